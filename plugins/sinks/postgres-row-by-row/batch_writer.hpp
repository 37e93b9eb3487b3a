#pragma once
// BatchWriter: the sink's `commit: batch`. Records are encoded for COPY into batches
// (batch_rows, batch_bytes); each batch is one transaction on one of several connections, the
// rows a statement refuses are found and taken out (isolate_rows), and every row gets exactly
// one outcome:
//   ok        once its batch's COMMIT succeeded (or, the answer lost, pg_xact_status of the
//             batch's transaction says committed and the server has not restarted since);
//   rejected  with the SQLSTATE and message of its own failure;
//   failed    when its batch could not be written, or its fate cannot be decided (commit
//             outcome unknown), or the run stopped before it was attempted.
// docs/guarantees.md states what holds.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iterator>
#include <memory>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "batch_isolation.hpp"
#include "batch_transaction.hpp"
#include "etl/sdk.hpp"
#include "first_error.hpp"
#include "etl/sdk/retry.hpp"
#include "row_plan.hpp"
#include "session_queries.hpp"
#include "suspect_rows.hpp"
#include "table_facts.hpp"

namespace etl::plugins::postgres {

/// What the sink hands the batch writer: where to connect and how hard to try.
struct BatchOptions {
  std::string conninfo;
  std::string stop_conninfo;  // quick connection attempts, for deciding a batch after a stop
  std::string where;          // host:port/dbname as user, for messages
  std::size_t connections = 4;
  std::size_t batch_rows = 4000;
  std::size_t batch_bytes = 4 << 20;
  sdk::RetryPolicy retry;
  long answer_timeout_ms = 60000;
  long settle_timeout_ms = 10000;
  /// insert: guess which rows will be refused and try them alone (suspect_rows.hpp).
  bool guess_failures = true;
};

class BatchWriter {
 public:
  BatchWriter(const RowPlan& plan, BatchOptions options, sdk::Context& context)
      // One batch waits for a connection: with one per connection in progress and one being
      // filled, at most connections + 2 batches are held.
      : plan_(plan), options_(std::move(options)), context_(context), queue_(1), insert_each_ready_(options_.connections) {
    sql_.upsert = plan.mode() == WriteMode::upsert;
    sql_.schema = plan.schema();
    sql_.table = plan.table();
    sql_.columns = plan.columns();
    sql_.conflict_columns = plan.conflict_columns();
    sql_.update_columns = plan.update_columns();
    sql_.guard = plan.guard();
    sql_.copy = copy_statement(plan.schema(), plan.table(), plan.columns(), sql_.upsert);
    sql_.relation = sql_.upsert ? std::string(kStageTable) : plan.table();
    sql_.create_stage = create_stage_statement(plan.schema(), plan.table(), plan.columns());
  }

  ~BatchWriter() {
    (void)queue_.abort();
    for (auto& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
  }

  void open(sdk::OutcomeReceiver& outcomes) {
    outcomes_ = &outcomes;
    // The first connection checks the table and columns: a typo is one clear error at the
    // start, not a failed batch per worker.
    std::vector<std::future<PgSession>> pending;
    for (std::size_t i = 0; i < options_.connections; ++i) {
      pending.push_back(std::async(std::launch::async, [this, i] { return connect(options_.conninfo, i == 0); }));
    }
    std::vector<PgSession> sessions;
    std::string first_failure;
    for (auto& session : pending) {
      try {
        sessions.push_back(session.get());
      } catch (const std::exception& e) {
        if (first_failure.empty()) first_failure = e.what();
      }
    }
    if (!first_failure.empty()) throw sdk::PluginError(first_failure);
    if (!sql_.upsert && options_.guess_failures) learn_table(sessions);
    context_.log(sdk::LogLevel::info,
                 "connected to PostgreSQL " + std::to_string(PQserverVersion(sessions.front().get()) / 10000) + " at " +
                     options_.where + " (commit: batch, " + std::to_string(options_.connections) + " connection(s), " +
                     std::to_string(options_.batch_rows) + " rows or " + std::to_string(options_.batch_bytes >> 10) +
                     " KiB per batch, COPY" + (sql_.upsert ? " into a staging table, then INSERT ... ON CONFLICT" : "") +
                     ", TLS " + (PQsslInUse(sessions.front().get()) ? "on" : "off") + ")");
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      workers_.emplace_back([this, i, session = std::move(sessions[i])]() mutable { work(i, std::move(session)); });
    }
  }

  void write(std::span<const sdk::Record> records) {
    const bool guessing = suspects_ && suspects_->active();
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (stopping()) {
        const std::string reason = "not attempted: " + stop_reason();
        for (; i < records.size(); ++i) outcomes_->deliver(records[i].sequence, sdk::Outcome::failed(reason));
        fail_batch(current_, reason);
        if (fatal_.load()) throw sdk::PluginError("PostgreSQL at " + options_.where + ": " + stop_reason());
        return;
      }
      const std::optional<std::size_t> ordinal = sql_.upsert ? std::optional<std::size_t>(current_.size()) : std::nullopt;
      if (auto refusal = plan_.append_copy_line(records[i], current_.data, ordinal)) {
        outcomes_->deliver(records[i].sequence, std::move(*refusal));
        continue;
      }
      if (guessing) {
        const std::size_t from = current_.ends.empty() ? 0 : current_.ends.back();
        if (suspects_->suspect(std::string_view(current_.data).substr(from, current_.data.size() - from - 1))) {
          current_.suspects.push_back(current_.size());
        }
      }
      current_.sequences.push_back(records[i].sequence);
      current_.ends.push_back(current_.data.size());
      if (current_.size() >= options_.batch_rows || current_.data.size() >= options_.batch_bytes) hand_over();
    }
  }

  void finish() {
    if (current_.size() > 0) hand_over();
    queue_.close();
    for (auto& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    for (auto& batch : queue_.abort()) fail_batch(batch, "not attempted: " + stop_reason());
    context_.log(sdk::LogLevel::info,
                 std::to_string(committed_batches_.load()) + " batch(es) committed; " + std::to_string(isolated_.load()) +
                     " row(s) taken out of their batch with " + std::to_string(extra_statements_.load()) +
                     " extra statement(s) in " + std::to_string(extra_exchanges_.load()) +
                     " extra exchange(s), loading " + std::to_string(rows_in_vain_.load()) + " row(s) in vain; " +
                     std::to_string(suspects_tried_.load()) + " suspected row(s) tried alone, " +
                     std::to_string(suspects_refused_.load()) + " of them refused; " +
                     std::to_string(reconnects_.load()) + " reconnect(s)");
    if (const std::string error = first_error(); !error.empty()) {
      throw sdk::PluginError("PostgreSQL at " + options_.where + ": " + error);
    }
  }

 private:
  /// Where a batch's transaction stands when its connection is lost.
  struct Lost {
    Backend backend;
    std::uint64_t xid = 0;
    bool commit_sent = false;
    std::vector<std::size_t> stored;  // the rows the transaction held at its commit
  };
  enum class Fate { committed, not_committed, unknown };

  void hand_over() {
    CopyBatch batch = std::move(current_);
    current_ = CopyBatch{};
    current_.data.reserve(batch.data.capacity());
    if (!queue_.push(batch)) fail_batch(batch, "not attempted: " + stop_reason());
  }

  void fail_batch(CopyBatch& batch, const std::string& reason) {
    for (const auto sequence : batch.sequences) outcomes_->deliver(sequence, sdk::Outcome::failed(reason));
    batch = CopyBatch{};
  }

  Deadlines deadlines() const {
    Deadlines out;
    out.answer_timeout_ms = options_.answer_timeout_ms;
    out.stop_requested = [this] { return context_.stop_requested(); };
    return out;
  }

  PgSession connect(const std::string& conninfo, bool check_table) {
    std::mt19937_64 random{std::random_device{}()};
    for (int attempt = 1;; ++attempt) {
      try {
        PgSession session = PgSession::open(conninfo, options_.where, deadlines());
        prepare(session, check_table);
        return session;
      } catch (const ConnectionLost& e) {
        if (attempt >= options_.retry.attempts || context_.stop_requested()) {
          throw sdk::PluginError(std::string(e.what()) + " (database unreachable after " + std::to_string(attempt) +
                                 (attempt == 1 ? " attempt)" : " attempts)"));
        }
        if (!sdk::sleep_unless_stopped(context_, options_.retry.delay(attempt, random))) {
          throw sdk::PluginError(std::string(e.what()) + " (the run was stopped while waiting to retry)");
        }
      }
    }
  }

  /// Reads the table's definition for guessing which rows will be refused (suspect_rows.hpp)
  /// and gives every session the function that tries them alone. Without either, rows are
  /// loaded unguessed: slower with bad rows, as correct.
  void learn_table(std::vector<PgSession>& sessions) {
    std::string error;
    std::optional<CatalogFacts> facts;
    try {
      facts = read_table_facts(sessions.front(), plan_.schema(), plan_.table(), plan_.columns(), error);
    } catch (const std::exception& e) {  // a connection lost meanwhile: the load finds out soon enough
      error = e.what();
    }
    if (!facts) {
      context_.log(sdk::LogLevel::warning, "cannot read the table's definition to guess which rows will fail (" + error +
                                               "); bad rows are found by COPY alone");
      return;
    }
    auto suspects = std::make_unique<SuspectRows>(facts->facts);
    if (!suspects->useful()) return;
    insert_each_sql_ = insert_each_function(plan_.schema(), plan_.table(), plan_.columns(), facts->sql_types);
    try {
      for (std::size_t i = 0; i < sessions.size(); ++i) {
        if (!create_insert_each(sessions[i], i, true)) return;
      }
    } catch (const std::exception& e) {
      context_.log(sdk::LogLevel::warning, std::string("cannot create the function that tries suspected rows alone (") +
                                               e.what() + "); bad rows are found by COPY alone");
      return;
    }
    suspects_ = std::move(suspects);
  }

  /// pg_temp.etl_insert_each on `session` (connection `index`); false (logged once) when refused.
  bool create_insert_each(PgSession& session, std::size_t index, bool log) {
    if (insert_each_sql_.empty()) return false;
    PgResult created = session.execute(insert_each_sql_.c_str());
    const bool ok = PQresultStatus(created.get()) == PGRES_COMMAND_OK;
    insert_each_ready_[index] = ok;
    if (!ok && log) {
      context_.log(sdk::LogLevel::warning, "PostgreSQL at " + options_.where + " refused the function that tries suspected rows alone (" +
                                               error_field(created.get(), PG_DIAG_SQLSTATE) + ": " +
                                               error_field(created.get(), PG_DIAG_MESSAGE_PRIMARY) + "); bad rows are found by COPY alone");
    }
    return ok;
  }

  /// The table and columns exist (checked once, at open), and upsert's staging table.
  void prepare(PgSession& session, bool check_table) {
    if (check_table) {
      const std::string probe = "SELECT " + column_list(plan_.columns()) + " FROM " + qualified_table(plan_.schema(), plan_.table()) + " LIMIT 0";
      PgResult checked = session.execute(probe.c_str());
      if (PQresultStatus(checked.get()) != PGRES_TUPLES_OK) {
        throw sdk::PluginError("PostgreSQL at " + options_.where + " refused the table (" +
                               error_field(checked.get(), PG_DIAG_SQLSTATE) + "): " +
                               error_field(checked.get(), PG_DIAG_MESSAGE_PRIMARY));
      }
    }
    if (sql_.upsert) {
      PgResult created = session.execute(sql_.create_stage.c_str());
      if (PQresultStatus(created.get()) != PGRES_COMMAND_OK) {
        throw sdk::PluginError("PostgreSQL at " + options_.where + " refused the staging table (" +
                               error_field(created.get(), PG_DIAG_SQLSTATE) + "): " +
                               error_field(created.get(), PG_DIAG_MESSAGE_PRIMARY));
      }
    }
  }

  void work(std::size_t index, PgSession session) {
    std::mt19937_64 random{std::random_device{}() ^ index};
    while (std::optional<CopyBatch> batch = queue_.pop()) {
      try {
        write_batch(index, session, *batch, random);
      } catch (const std::exception& e) {
        // Not expected (write_batch settles its rows itself): whatever is left is failed.
        record_error(e.what());
        fatal_.store(true);
      }
    }
  }

  void deliver(const CopyBatch& batch, std::vector<std::size_t>& open, const std::vector<std::size_t>& rows,
               const sdk::Outcome& outcome) {
    for (const auto row : rows) outcomes_->deliver(batch.sequences[row], outcome);
    remove(open, rows);
  }

  static void remove(std::vector<std::size_t>& open, const std::vector<std::size_t>& rows) {
    std::vector<std::size_t> kept;
    kept.reserve(open.size());
    std::set_difference(open.begin(), open.end(), rows.begin(), rows.end(), std::back_inserter(kept));
    open = std::move(kept);
  }

  /// Writes one batch until every row of it has its outcome.
  void write_batch(std::size_t index, PgSession& session, CopyBatch& batch, std::mt19937_64& random) {
    std::vector<std::size_t> open(batch.size());  // rows without an outcome yet, ascending
    for (std::size_t i = 0; i < open.size(); ++i) open[i] = i;
    std::optional<Lost> lost;
    int failures = 0;  // connection failures in a row
    int retries = 0;   // deadlocks, serialization failures
    bool stop_attempt_made = false;
    auto give_up = [&](const std::string& reason) {
      if (lost && lost->commit_sent) {
        deliver(batch, open, lost->stored, sdk::Outcome::commit_unknown(reason));
      }
      std::vector<std::size_t> rest = open;
      deliver(batch, open, rest, sdk::Outcome::failed(reason));
    };
    while (!open.empty()) {
      if (stopping() && !lost) {
        give_up("not attempted: " + stop_reason());
        return;
      }
      try {
        if (!session) {
          const bool quick = stopping();
          session = PgSession::open(quick ? options_.stop_conninfo : options_.conninfo, options_.where, deadlines());
          if (!quick) {
            prepare(session, false);
            if (suspects_) (void)create_insert_each(session, index, false);  // without it: one statement per suspect
          }
          ++reconnects_;
        }
        if (lost) {
          const Fate fate = decide(session, *lost);
          if (fate == Fate::committed) {
            commit_done(batch, open, lost->stored);
            return;
          }
          if (fate == Fate::unknown) {
            give_up("the connection was lost after the batch's COMMIT was sent, and its transaction " +
                    std::to_string(lost->xid) + " could not be decided");
            return;
          }
          lost.reset();  // not committed: written again
          if (stopping()) continue;
        }
        BatchTransaction transaction(session, batch, sql_, insert_each_ready_[index] != 0);
        Lost attempt;
        attempt.backend = session.backend();
        try {
          attempt.xid = transaction.begin();
          Isolation isolation = isolate_rows(transaction, open, sql_.upsert, batch.suspects);
          extra_statements_ += isolation.statements - 1;
          extra_exchanges_ += isolation.exchanges - 1;
          rows_in_vain_ += isolation.rows_in_vain;
          if (transaction.insert_each_missing()) {
            // The session lost its function (a pooler that resets sessions, a DISCARD): its
            // suspects go one statement each from now on, and this batch is written again.
            transaction.rollback();
            insert_each_ready_[index] = 0;
            context_.log(sdk::LogLevel::warning, "connection " + std::to_string(index + 1) +
                                                     ": the function that tries suspected rows alone is gone (" +
                                                     (isolation.batch_error ? isolation.batch_error->message : std::string()) +
                                                     "); its suspected rows go one statement each, the batch is written again");
            continue;
          }
          suspects_tried_ += isolation.suspects_tried;
          suspects_refused_ += isolation.suspects_refused;
          if (suspects_ && isolation.suspects_tried > 0 && suspects_->judge(isolation.suspects_tried, isolation.suspects_refused)) {
            context_.log(sdk::LogLevel::info, "stopped guessing which rows will fail: most suspected rows went in");
          }
          std::vector<std::size_t> settled;  // taken out of open at once: one pass, not one per row
          settled.reserve(isolation.rejected.size() + isolation.failed.size());
          for (const auto& [row, error] : isolation.rejected) {
            outcomes_->deliver(batch.sequences[row], sdk::Outcome::rejected(error.sqlstate, error.message));
            settled.push_back(row);
          }
          for (const auto& [row, error] : isolation.failed) {
            outcomes_->deliver(batch.sequences[row], sdk::Outcome::failed(error.message, error.sqlstate));
            settled.push_back(row);
          }
          std::sort(settled.begin(), settled.end());
          remove(open, settled);
          isolated_ += isolation.rejected.size() + isolation.failed.size();
          std::optional<StepError> error = std::move(isolation.batch_error);
          if (error) {
            transaction.rollback();
          } else {
            attempt.stored = std::move(isolation.stored);
            error = transaction.commit();
          }
          if (!error) {
            commit_done(batch, open, attempt.stored);
            return;
          }
          const ErrorKind kind = classify_sqlstate(error->sqlstate);
          if (kind == ErrorKind::retry_row && ++retries < options_.retry.attempts) {
            const double delay = options_.retry.delay(retries, random);
            context_.log(sdk::LogLevel::warning, "batch of " + std::to_string(batch.size()) + " rows: " + error->message +
                                                     " (" + error->sqlstate + "); trying again in " + seconds_text(delay));
            if (sdk::sleep_unless_stopped(context_, delay)) continue;
          }
          std::string reason = error->message + (kind == ErrorKind::retry_row ? " (gave up after " + std::to_string(retries) + " attempts)" : "");
          if (kind == ErrorKind::fatal) declare_fatal(error->sqlstate + ": " + error->message);
          for (const auto row : std::vector<std::size_t>(open)) {
            outcomes_->deliver(batch.sequences[row], sdk::Outcome::failed(reason, error->sqlstate));
          }
          open.clear();
          return;
        } catch (const ConnectionLost&) {
          attempt.commit_sent = transaction.commit_sent();
          lost = std::move(attempt);
          throw;
        }
      } catch (const ConnectionLost& e) {
        session = PgSession{};
        ++failures;
        if (stopping()) {
          if (lost && !stop_attempt_made) {
            stop_attempt_made = true;  // one quick try to decide the batch
            continue;
          }
          give_up(std::string(e.what()) + " (" + stop_reason() + ")");
          return;
        }
        if (failures >= options_.retry.attempts) {
          const std::string reason = std::string(e.what()) + " (database unreachable after " + std::to_string(failures) + " attempts)";
          declare_fatal(reason);
          give_up(reason);
          return;
        }
        const double delay = options_.retry.delay(failures, random);
        context_.log(sdk::LogLevel::warning, "connection " + std::to_string(index + 1) + " to PostgreSQL at " +
                                                 options_.where + ": " + e.what() + "; reconnecting in " +
                                                 seconds_text(delay) + " (attempt " + std::to_string(failures + 1) +
                                                 " of " + std::to_string(options_.retry.attempts) + ", a batch of " +
                                                 std::to_string(open.size()) + " row(s) to decide)");
        (void)sdk::sleep_unless_stopped(context_, delay);
      } catch (const std::exception& e) {
        record_error(e.what());
        give_up(e.what());
        return;
      }
    }
  }

  void commit_done(const CopyBatch& batch, std::vector<std::size_t>& open, const std::vector<std::size_t>& stored) {
    deliver(batch, open, stored, sdk::Outcome::ok());
    ++committed_batches_;
    // Rows the transaction did not hold and that have no outcome: none should be left.
    for (const auto row : std::vector<std::size_t>(open)) {
      outcomes_->deliver(batch.sequences[row], sdk::Outcome::failed("internal: row left out of its batch"));
    }
    open.clear();
  }

  /// The fate of a batch whose connection was lost, asked over a new session.
  Fate decide(PgSession& session, const Lost& lost) {
    SessionQueries queries(session, plan_, stopping() ? std::min(options_.settle_timeout_ms, 2000L) : options_.settle_timeout_ms);
    // Its server process must be gone first: until then it may still commit (or hold locks
    // the batch's second try would wait on).
    const std::string unsettled = queries.settle(lost.backend);
    if (!lost.commit_sent) return Fate::not_committed;  // without a COMMIT nothing commits
    if (!unsettled.empty()) {
      context_.log(sdk::LogLevel::warning, "batch transaction " + std::to_string(lost.xid) + ": " + unsettled);
      return Fate::unknown;
    }
    const auto snapshot = queries.snapshot();
    const bool restarted = !snapshot || snapshot->server_started != lost.backend.server_started;
    const std::string xid = std::to_string(lost.xid);
    PgResult status = session.execute("SELECT pg_xact_status($1::xid8)", {xid.c_str()});
    std::string state;
    if (PQresultStatus(status.get()) == PGRES_TUPLES_OK && PQntuples(status.get()) == 1 && !PQgetisnull(status.get(), 0, 0)) {
      state = PQgetvalue(status.get(), 0, 0);
    } else if (error_field(status.get(), PG_DIAG_MESSAGE_PRIMARY).find("in the future") != std::string::npos) {
      // After a crash restart: the id never reached the WAL, which a commit would have.
      state = "future";
    }
    Fate fate = Fate::unknown;
    if (state == "committed") {
      // After a crash restart an id that never reached the WAL is handed out again: then
      // "committed" may speak of another transaction.
      fate = restarted ? Fate::unknown : Fate::committed;
    } else if (state == "aborted" || state == "future" || (state == "in progress" && restarted)) {
      // (in progress after a restart: the id was handed out again, so ours never reached the WAL)
      fate = Fate::not_committed;
    }
    context_.log(fate == Fate::unknown ? sdk::LogLevel::warning : sdk::LogLevel::info,
                 "decided the batch of " + std::to_string(lost.stored.size()) + " row(s) on the lost connection (transaction " +
                     xid + ": " + (state.empty() ? std::string("status unknown") : state) +
                     (restarted ? ", server restarted since" : "") + "): " +
                     (fate == Fate::committed ? "committed" : fate == Fate::not_committed ? "not committed, written again" : "undecidable"));
    return fate;
  }

  void record_error(const std::string& message) { errors_.record(message); }
  std::string first_error() const { return errors_.get(); }
  void declare_fatal(const std::string& message) {
    if (fatal_.exchange(true)) return;
    record_error(message + " (every batch would meet this error; stopping)");
    context_.log(sdk::LogLevel::error, "PostgreSQL at " + options_.where + ": " + first_error());
  }
  bool stopping() const { return fatal_.load() || context_.stop_requested(); }
  std::string stop_reason() { return fatal_.load() ? first_error() : std::string("the run was stopped"); }

  const RowPlan& plan_;
  BatchOptions options_;
  sdk::Context& context_;
  BatchSql sql_;
  BatchQueue queue_;
  sdk::OutcomeReceiver* outcomes_ = nullptr;
  std::vector<std::thread> workers_;
  CopyBatch current_;
  FirstError errors_;
  std::atomic<bool> fatal_{false};
  std::atomic<std::uint64_t> committed_batches_{0};
  std::atomic<std::uint64_t> isolated_{0};
  std::atomic<std::uint64_t> extra_statements_{0};
  std::atomic<std::uint64_t> extra_exchanges_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> rows_in_vain_{0};
  std::atomic<std::uint64_t> suspects_tried_{0};
  std::atomic<std::uint64_t> suspects_refused_{0};
  std::unique_ptr<SuspectRows> suspects_;   // null: no guessing (upsert, or nothing to guess from)
  std::string insert_each_sql_;
  std::vector<char> insert_each_ready_;     // per connection: its session has the function
};

}  // namespace etl::plugins::postgres
