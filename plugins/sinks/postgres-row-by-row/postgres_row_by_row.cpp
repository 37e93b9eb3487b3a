// postgres-row-by-row: writes each record in its own transaction and reports each outcome.
//
// Rows are sent in libpq pipeline mode, with a sync point after every row, over several
// connections: each row stays its own implicit transaction (an error aborts that row only),
// while the network round trip and the commit's WAL flush of many rows overlap.
//
// The parts, each tested alone (tests/):
//   RowPlan         (row_plan.hpp)        config -> statements; record -> row or refusal
//   Dispatcher      (dispatcher.hpp)      one budget of rows shared by the connections
//   PgSession,      (pg_session.hpp)      a libpq connection whose every wait has a deadline;
//   PipelineWindow                        rows in flight, answers as events
//   interpret_answers (answers.hpp)       answers -> the row's outcome
//   resolve_lost_rows (commit_resolver.hpp) the fate of rows in flight on a lost connection
// This file drives them: one thread per connection, reconnecting with backoff, and delivering
// every row's outcome exactly once. docs/guarantees.md states the result.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "answers.hpp"
#include "batch_writer.hpp"
#include "commit_resolver.hpp"
#include "dispatcher.hpp"
#include "etl/sdk.hpp"
#include "first_error.hpp"
#include "etl/sdk/retry.hpp"
#include "pg_session.hpp"
#include "row_plan.hpp"
#include "session_queries.hpp"
#include "sink_config.hpp"

namespace etl::plugins::postgres {
namespace {

std::string statement_name(std::size_t index) { return "etl_write_" + std::to_string(index); }

/// One writer: a connection and the thread that drives it.
struct Worker {
  explicit Worker(std::size_t index) : index(index) {}
  std::size_t index;
  PgSession session;
  std::thread thread;
};

class PostgresRowByRowSink final : public sdk::Sink {
 public:
  static sdk::ConfigMap<Config> config_map() { return declare_config(); }

  PostgresRowByRowSink(const Config& config, sdk::Context& context) : context_(context), plan_(config) {
    where_ = describe(config);
    std::map<std::string, std::string> parameters = connection_parameters(config);
    conninfo_ = connection_string(parameters);
    // After a stop only a quick attempt is worth making (the stop must end within seconds).
    // Its statements are bounded too: a locked table must not hold the stop.
    parameters["connect_timeout"] = "2";
    parameters["options"] = "-c statement_timeout=2000";
    stop_conninfo_ = connection_string(parameters);
    // pipeline: false is the same protocol with one row in flight: one round trip per row.
    window_ = config.pipeline ? static_cast<std::size_t>(config.max_in_flight) : 1;
    connection_count_ = static_cast<std::size_t>(config.connections);
    retry_ = config.retry;
    policy_ = ResolverPolicy{plan_.mode(), plan_.idempotent(), config.lookup_unanswered};
    settle_timeout_ms_ = static_cast<long>(config.settle_timeout * 1000);
    answer_timeout_ms_ = std::max(1L, static_cast<long>(config.answer_timeout * 1000));
    if (config.commit == "batch") {
      if (plan_.mode() != WriteMode::insert && plan_.mode() != WriteMode::upsert) {
        throw sdk::ConfigError("/commit", "commit: batch works with mode insert or upsert, not " + config.mode);
      }
      if (!config.casts.empty()) {
        throw sdk::ConfigError("/casts", "commit: batch loads text into the columns' own types with COPY; casts do not apply");
      }
      BatchOptions options;
      options.conninfo = conninfo_;
      options.stop_conninfo = stop_conninfo_;
      options.where = where_;
      options.connections = connection_count_;
      options.batch_rows = static_cast<std::size_t>(config.batch_rows);
      options.batch_bytes = static_cast<std::size_t>(config.batch_bytes);
      options.retry = retry_;
      options.answer_timeout_ms = answer_timeout_ms_;
      options.settle_timeout_ms = settle_timeout_ms_;
      options.guess_failures = config.guess_failures;
      batch_ = std::make_unique<BatchWriter>(plan_, std::move(options), context_);
    }
  }

  ~PostgresRowByRowSink() override {
    if (dispatcher_) dispatcher_->abort();
    for (auto& worker : workers_) {
      if (worker->thread.joinable()) worker->thread.join();
    }
  }

  void open(sdk::OutcomeReceiver& outcomes) override {
    if (batch_) return batch_->open(outcomes);
    outcomes_ = &outcomes;
    // One budget for all: each connection's window, and as much again queued behind it.
    dispatcher_ = std::make_unique<Dispatcher>(connection_count_, connection_count_ * window_ * 3);
    for (std::size_t i = 0; i < connection_count_; ++i) workers_.push_back(std::make_unique<Worker>(i));
    // Connect in parallel: a TLS handshake plus SCRAM authentication is several round trips,
    // which for 16 connections to a distant server would otherwise add up.
    std::vector<std::future<PgSession>> pending;
    for (std::size_t i = 0; i < connection_count_; ++i) {
      pending.push_back(std::async(std::launch::async, [this, i] { return connect_with_retry(i == 0); }));
    }
    std::string first_failure;
    for (std::size_t i = 0; i < connection_count_; ++i) {
      try {
        workers_[i]->session = pending[i].get();
      } catch (const std::exception& e) {
        if (first_failure.empty()) first_failure = e.what();
      }
    }
    if (!first_failure.empty()) throw sdk::PluginError(first_failure);
    PGconn* first = workers_.front()->session.get();
    context_.log(sdk::LogLevel::info,
                 "connected to PostgreSQL " + std::to_string(PQserverVersion(first) / 10000) + " at " + where_ + " (" +
                     std::to_string(connection_count_) + " connection(s), " +
                     (window_ > 1 ? "pipeline mode, " + std::to_string(window_) + " rows in flight each"
                                  : std::string("serial")) +
                     ", TLS " + (PQsslInUse(first) ? "on" : "off") + ")");
    for (auto& worker : workers_) {
      Worker* raw = worker.get();
      worker->thread = std::thread([this, raw] { work(*raw); });
    }
  }

  void write(std::span<const sdk::Record> records) override {
    if (batch_) return batch_->write(records);
    for (std::size_t i = 0; i < records.size(); ++i) {
      const sdk::Record& record = records[i];
      if (stopping()) {
        // Stopped, or an error every row would meet: the rest is not attempted.
        const std::string reason = stop_reason();
        for (; i < records.size(); ++i) {
          outcomes_->deliver(records[i].sequence, sdk::Outcome::failed("not attempted: " + reason));
        }
        if (fatal_.load()) throw sdk::PluginError("PostgreSQL at " + where_ + ": " + reason);
        return;
      }
      Row row;
      if (auto refusal = plan_.fill(record, row)) {
        outcomes_->deliver(record.sequence, std::move(*refusal));
        continue;
      }
      if (plan_.mode() == WriteMode::insert) row.xid_floor = floors_.floor(row.key_hash);
      const auto refused = dispatcher_->push(std::move(row));
      if (!refused) continue;
      outcomes_->deliver(record.sequence, sdk::Outcome::failed("not attempted: " + *refused));
      // Retired for a stop: the next record takes the stop branch above. Otherwise every
      // connection gave up, and the sink has failed.
      if (!stopping() && dispatcher_->all_retired()) throw sdk::PluginError("PostgreSQL at " + where_ + ": " + first_error());
    }
  }

  void finish() override {
    if (batch_) return batch_->finish();
    dispatcher_->close();
    for (auto& worker : workers_) {
      if (worker->thread.joinable()) worker->thread.join();
    }
    if (const std::string error = first_error(); !error.empty()) {
      throw sdk::PluginError("PostgreSQL at " + where_ + ": " + error);
    }
  }

 private:
  Deadlines deadlines() const {
    Deadlines out;
    out.answer_timeout_ms = answer_timeout_ms_;
    out.stop_requested = [this] { return context_.stop_requested(); };
    return out;
  }

  /// One connection attempt; the write statements are prepared unless the connection is only
  /// to decide rows after a stop (preparing waits for table locks).
  PgSession connect_once(const std::string& conninfo, bool prepare_statements = true) {
    PgSession session = PgSession::open(conninfo, where_, deadlines());
    if (!prepare_statements) return session;
    for (std::size_t i = 0; i < plan_.statements().size(); ++i) {
      const WriteStatement& statement = plan_.statements()[i];
      PgResult prepared = session.prepare(statement_name(i).c_str(), statement.sql,
                                          static_cast<int>(statement.parameters.size()));
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
        throw sdk::PluginError("PostgreSQL at " + where_ + " refused the write statement (" +
                               error_field(prepared.get(), PG_DIAG_SQLSTATE) + "): " +
                               error_field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY) + " [" + statement.sql + "]");
      }
    }
    return session;
  }

  PgSession connect_with_retry(bool log_retries) {
    std::mt19937_64 random{std::random_device{}()};
    for (int attempt = 1;; ++attempt) {
      try {
        return connect_once(conninfo_);
      } catch (const ConnectionLost& e) {
        if (attempt >= retry_.attempts || context_.stop_requested()) {
          throw sdk::PluginError(std::string(e.what()) + " (database unreachable after " + std::to_string(attempt) +
                                 (attempt == 1 ? " attempt)" : " attempts)"));
        }
        const double delay = retry_.delay(attempt, random);
        if (log_retries) {
          context_.log(sdk::LogLevel::warning, std::string(e.what()) + "; retrying in " + seconds_text(delay) +
                                                   " (attempt " + std::to_string(attempt + 1) + " of " +
                                                   std::to_string(retry_.attempts) + ")");
        }
        if (!sdk::sleep_unless_stopped(context_, delay)) {
          throw sdk::PluginError(std::string(e.what()) + " (the run was stopped while waiting to retry)");
        }
      }
    }
  }

  void record_error(const std::string& message) { errors_.record(message); }
  std::string first_error() const { return errors_.get(); }

  /// The sink stops taking rows: an error every row would meet, or the host asked to stop.
  bool stopping() const { return fatal_.load() || context_.stop_requested(); }
  std::string stop_reason() { return fatal_.load() ? first_error() : std::string("the run was stopped"); }

  void declare_fatal(const sdk::Outcome& outcome) {
    if (fatal_.exchange(true)) return;
    record_error(outcome.code + ": " + outcome.message + " (every row would meet this error; stopping)");
    context_.log(sdk::LogLevel::error, "PostgreSQL at " + where_ + ": " + first_error());
  }

  /// The row's outcome is final: equal rows learn its transaction, its place in the budget is
  /// freed, and the outcome goes to the host. Every row held by a worker ends here.
  void decide(Worker& worker, const Row& row, sdk::Outcome outcome, std::optional<std::uint64_t> committed_xid = {}) {
    if (plan_.mode() == WriteMode::insert) {
      if (outcome.status == sdk::Status::ok && committed_xid) {
        floors_.committed(row.key_hash, *committed_xid);
      } else if (outcome.code == sdk::kCommitUnknownCode) {
        floors_.untrusted(row.key_hash);
      }
    }
    dispatcher_->settled(worker.index, row.key_hash);
    outcomes_->deliver(row.sequence, std::move(outcome));
  }

  /// Sends and answers rows on a live connection until its queue is closed and drained.
  /// Throws ConnectionLost with the undecided rows left in `in_flight`.
  void pump(Worker& worker, std::deque<SentRow>& in_flight, std::deque<Row>& unsent, int& failures,
            std::mt19937_64& random) {
    PipelineWindow window(worker.session, plan_.mode() == WriteMode::statement);
    while (true) {
      while (!stopping() && in_flight.size() < window_) {
        Row row;
        if (!unsent.empty()) {
          row = std::move(unsent.front());
          unsent.pop_front();
        } else if (!dispatcher_->take(worker.index, row, /*wait=*/in_flight.empty())) {
          break;
        }
        // In flight before it is sent: a send that fails half-way leaves a row to decide.
        in_flight.push_back(SentRow{std::move(row), std::nullopt});
        window.send(statement_name(in_flight.back().row.statement).c_str(), plan_.parameters(in_flight.back().row));
      }
      if (in_flight.empty()) break;
      window.flush();
      SentRow& oldest = in_flight.front();
      RowAnswers answers;
      answers.statement = window.statement_result();
      // Kept as soon as it arrives: a connection lost before the commit's answer still leaves
      // the row decidable by its transaction id.
      if (plan_.mode() != WriteMode::statement && answers.statement.kind == ResultView::Kind::rows &&
          answers.statement.first_value) {
        oldest.xid = parse_transaction_id(*answers.statement.first_value);
      }
      answers.commit_error = window.commit();
      Answer answer = interpret_answers(plan_.mode(), oldest.row.replayed, plan_.table(), answers);
      if (answer.connection_lost) throw ConnectionLost(answer.lost_reason);
      failures = 0;
      // Raised only for decided rows: the ids of rows still in flight may not survive a crash.
      if (oldest.xid) {
        auto& floor = worker.session.backend().floor;
        floor = std::max(floor, *oldest.xid + 1);
      }
      Row row = std::move(oldest.row);
      in_flight.pop_front();
      if (answer.retry && ++row.attempts < retry_.attempts) {
        const double delay = retry_.delay(row.attempts, random);
        context_.log(sdk::LogLevel::warning, "record " + std::to_string(row.sequence) + ": " + answer.outcome.message +
                                                 " (" + answer.outcome.code + (answer.at_commit ? ", at commit" : "") +
                                                 "); trying again in " + seconds_text(delay));
        if (sdk::sleep_unless_stopped(context_, delay)) {
          unsent.push_front(std::move(row));
          continue;
        }
      } else if (answer.retry) {
        answer.outcome.message += " (gave up after " + std::to_string(row.attempts) + " attempts)";
      }
      if (answer.fatal) declare_fatal(answer.outcome);
      const bool stored = answer.outcome.status == sdk::Status::ok && !answer.at_commit;
      decide(worker, row, std::move(answer.outcome), stored ? answer.xid : std::nullopt);
    }
  }

  /// After a stop: the rows this connection has not sent are reported, and no more are taken.
  void retire_unsent(Worker& worker, std::deque<Row>& unsent) {
    const std::string reason = "not attempted: " + stop_reason();
    for (auto& row : unsent) decide(worker, row, sdk::Outcome::failed(reason));
    unsent.clear();
    for (auto& row : dispatcher_->retire(worker.index, stop_reason())) {
      outcomes_->deliver(row.sequence, sdk::Outcome::failed(reason));
    }
  }

  /// Decides the rows in flight on a lost connection over a new one (see commit_resolver.hpp).
  /// Returns the number of rows decided (reported); the others are sent again.
  std::size_t resolve(Worker& worker, const Backend& lost, std::deque<SentRow>& in_flight, std::deque<Row>& unsent) {
    SessionQueries queries(worker.session, plan_, stopping() ? std::min(settle_timeout_ms_, 2000L) : settle_timeout_ms_);
    const std::vector<SentRow> rows(in_flight.begin(), in_flight.end());
    const Resolution resolution = resolve_lost_rows(policy_, queries, lost, rows);
    context_.log(resolution.unknown() == 0 ? sdk::LogLevel::info : sdk::LogLevel::warning,
                 "decided the " + std::to_string(in_flight.size()) +
                     " row(s) in flight on the lost connection (server process " + std::to_string(lost.pid) +
                     (resolution.restarted ? ", server restarted since: decided by lookup" : "") + "): " +
                     std::to_string(resolution.committed()) + " committed, " + std::to_string(resolution.again.size()) +
                     (resolution.replay ? " replayed" : " not committed (sent again)") + ", " +
                     std::to_string(resolution.unknown()) + " undecidable");
    for (const auto& decision : resolution.decided) decide(worker, in_flight[decision.index].row, decision.outcome, decision.xid);
    std::deque<Row> resend;
    for (const std::size_t index : resolution.again) {
      in_flight[index].row.replayed = resolution.replay;
      resend.push_back(std::move(in_flight[index].row));
    }
    in_flight.clear();
    for (auto it = resend.rbegin(); it != resend.rend(); ++it) unsent.push_front(std::move(*it));
    return resolution.decided.size();
  }

  /// Reports every row this connection still holds, and refuses new ones.
  void give_up(Worker& worker, const std::string& reason, std::deque<SentRow>& in_flight, std::deque<Row>& unsent,
               bool record = true) {
    // A stop the host asked for is no sink failure: the host already knows why it stopped.
    if (record) record_error(reason);
    context_.log(sdk::LogLevel::error, "PostgreSQL at " + where_ + ": " + reason);
    for (auto& sent : in_flight) decide(worker, sent.row, sdk::Outcome::commit_unknown(reason));
    for (auto& row : unsent) decide(worker, row, sdk::Outcome::failed("not attempted: " + reason));
    for (auto& row : dispatcher_->retire(worker.index, reason)) {
      outcomes_->deliver(row.sequence, sdk::Outcome::failed("not attempted: " + reason));
    }
    in_flight.clear();
    unsent.clear();
  }

  void work(Worker& worker) {
    std::mt19937_64 random{std::random_device{}() ^ worker.index};
    std::deque<SentRow> in_flight;  // sent, not yet decided
    std::deque<Row> unsent;         // to send before new rows: retries and rows found not committed
    std::optional<Backend> lost;    // the server process whose rows in_flight holds, once its connection is gone
    int failures = 0;               // connection failures since the last answered row
    bool stop_resolution_tried = false;
    while (true) {
      try {
        if (!worker.session) {
          worker.session = stopping() ? connect_once(stop_conninfo_, /*prepare_statements=*/false) : connect_once(conninfo_);
        }
        if (lost) {
          // Rows decided (committed, or undecidable and reported) are progress; rows found
          // not committed and sent again are not, so a server that drops every connection
          // before its rows are answered still spends the budget.
          if (resolve(worker, *lost, in_flight, unsent) != 0) failures = 0;
          lost.reset();
        }
        pump(worker, in_flight, unsent, failures, random);
        if (stopping()) retire_unsent(worker, unsent);
        return;
      } catch (const ConnectionLost& e) {
        if (!lost && !in_flight.empty()) lost = worker.session.backend();
        worker.session = PgSession{};
        ++failures;
        if (stopping()) {
          // One quick try to decide the rows in flight (their server process is ended first,
          // so none can commit later); what stays undecided is reported commit-unknown.
          if (lost && !stop_resolution_tried) {
            stop_resolution_tried = true;
            continue;
          }
          give_up(worker, std::string(e.what()) + " (" + stop_reason() + ")", in_flight, unsent, /*record=*/false);
          return;
        }
        if (failures >= retry_.attempts) {
          give_up(worker, std::string(e.what()) + " (database unreachable after " + std::to_string(failures) + " attempts)",
                  in_flight, unsent);
          return;
        }
        const double delay = retry_.delay(failures, random);
        context_.log(sdk::LogLevel::warning, "connection " + std::to_string(worker.index + 1) + " to PostgreSQL at " +
                                                 where_ + ": " + e.what() + "; reconnecting in " + seconds_text(delay) +
                                                 " (attempt " + std::to_string(failures + 1) + " of " +
                                                 std::to_string(retry_.attempts) + ", " +
                                                 std::to_string(in_flight.size()) + " row(s) to decide)");
        if (!sdk::sleep_unless_stopped(context_, delay)) {
          if (lost && !stop_resolution_tried) {
            stop_resolution_tried = true;
            continue;
          }
          give_up(worker, std::string(e.what()) + " (the run was stopped)", in_flight, unsent, /*record=*/false);
          return;
        }
      } catch (const std::exception& e) {
        give_up(worker, e.what(), in_flight, unsent);
        return;
      }
    }
  }

  sdk::Context& context_;
  RowPlan plan_;
  ResolverPolicy policy_;
  std::string where_;  // host:port/dbname as user, for messages
  std::string conninfo_;
  std::string stop_conninfo_;
  std::size_t window_ = 1;
  std::size_t connection_count_ = 1;
  sdk::RetryPolicy retry_;
  long settle_timeout_ms_ = 10000;
  long answer_timeout_ms_ = 60000;

  sdk::OutcomeReceiver* outcomes_ = nullptr;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::vector<std::unique_ptr<Worker>> workers_;
  EqualRowFloors floors_;
  FirstError errors_;
  std::atomic<bool> fatal_{false};
  std::unique_ptr<BatchWriter> batch_;  // commit: batch (the members above are then unused)
};

}  // namespace
}  // namespace etl::plugins::postgres

ETL_PLUGIN(etl::plugins::postgres::PostgresRowByRowSink, "postgres-row-by-row", "2.1.0",
           "Writes each record to PostgreSQL in its own transaction: insert, upsert, update, delete or a statement "
           "(pipelined, several connections)");
// The short name pipelines may use for the same plugin.
ETL_PLUGIN_ALIASES("postgres");
