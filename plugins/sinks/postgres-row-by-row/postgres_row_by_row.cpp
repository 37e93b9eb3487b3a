// postgres-row-by-row (also: postgres): writes each record in its own transaction and reports
// each outcome.
//
// Rows are sent in libpq pipeline mode, with a sync point after every row, over several
// connections: each row stays its own implicit transaction (an error aborts that row only),
// while the network round trip and the commit's WAL flush of many rows overlap.
//
// The parts, each tested alone:
//   RowPlan           (postgres/row_plan.hpp)        config -> statements; record -> row or refusal
//   Dispatcher        (dispatcher.hpp)               one budget of rows shared by the connections
//   PgSession,        (postgres/session.hpp)         a libpq connection whose every wait has a
//   PipelineWindow                                   deadline; rows in flight, answers as events
//   interpret_answers (postgres/answers.hpp)         answers -> the row's outcome
//   resolve_lost_rows (postgres/commit_resolver.hpp) the fate of rows in flight on a lost connection
//   Connector,        (postgres/connector.hpp)       sessions under the retry policy; the sink's
//   SinkState                                        stop, first error and readiness
// This file drives them: one thread per connection, reconnecting with backoff, and delivering
// every row's outcome exactly once. docs/guarantees.md states the result.
//
// In a service (sdk::is_service) a lost database ends nothing: each connection reconnects for
// as long as the service runs, and while none is up every row is refused at once (failed, code
// unavailable: an HTTP source answers 503 with Retry-After).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include "dispatcher.hpp"
#include "etl/sdk.hpp"
#include "postgres/answers.hpp"
#include "postgres/commit_resolver.hpp"
#include "postgres/connector.hpp"
#include "postgres/row_plan.hpp"
#include "postgres/session.hpp"
#include "postgres/session_queries.hpp"
#include "postgres/write_target.hpp"

namespace etl::plugins::postgres {
namespace {

/// How often an idle connection looks at its socket: a server that ended the session (a
/// restart) is noticed before the next row is sent on it.
constexpr std::chrono::milliseconds kIdleCheck{200};
/// In a service, how long rows in flight on a lost connection wait for the server to be back
/// (a restart) before they are reported commit outcome unknown and the connection is down.
constexpr std::chrono::duration<double> kOutageAfter{1.5};

struct Config : PgConnection, WriteTarget {
  std::string commit = "per_row";
  bool pipeline = true;
  int connections = 16;
  int max_in_flight = 64;
  sdk::RetryPolicy retry;
  bool lookup_unanswered = true;
  double answer_timeout = 60;
  double settle_timeout = 10;
  std::string when_unavailable = "refuse";
};

sdk::ConfigMap<Config> declare_config() {
  sdk::ConfigMap<Config> map;
  declare_connection(map);
  declare_table_keys(map, /*statement_mode_exists=*/true);
  map.key("casts", &WriteTarget::casts,
          "Column -> SQL type its value is cast to in the statement, e.g. {\"dob\": \"date\"} ($1::date): for "
          "values PostgreSQL would not take as they come, or to choose an overloaded function.")
      .schema(R"({"additionalProperties": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_ .]*(\\([0-9, ]+\\))?(\\[\\])?$"}})");
  map.key("mode", &WriteTarget::mode,
          "insert; upsert (INSERT ... ON CONFLICT (conflict_columns) DO UPDATE); update or delete by key_columns (no row "
          "with the key: rejected, code not_found); statement; changes: postgres-cdc's change records by _op (insert, "
          "read, update: an upsert on key_columns that leaves _unchanged columns as stored and follows a moved key; "
          "delete: by key, no row is ok, code absent; truncate: TRUNCATE, after every earlier change). Each record is "
          "its own transaction.")
      .one_of({"insert", "upsert", "update", "delete", "statement", "changes"});
  declare_upsert_keys(map);
  map.key("key_columns", &WriteTarget::key_columns,
          "update, delete, changes: the columns that find the row. insert: optional, rows with the same key keep their order "
          "(of two duplicates the first is stored, the later rejected). statement: optional, the fields (parameters) "
          "whose values keep one key's rows in order on one connection (e.g. a replicated row's changes).");
  map.key("statement", &WriteTarget::statement,
          "statement: SQL with the record's fields as named parameters ($email), always bound. A SELECT or RETURNING "
          "puts its first row in the outcome's detail; no row, or no row touched, is rejected with code not_found.");
  map.key("statements", &WriteTarget::statements,
          "statement: a statement per value of statement_field (e.g. created/updated/deleted); another value is "
          "rejected with code unknown_statement.");
  map.key("statement_field", &WriteTarget::statement_field, "statement: the field whose value chooses from statements.");
  map.key("idempotent", &WriteTarget::idempotent,
          "statement: replaying the statement after a lost connection is safe (it sets values rather than adds); "
          "without it such a row is reported commit outcome unknown.");
  map.key("commit", &Config::commit,
          "per_row: each record is its own transaction. (Batches through COPY are the postgres-copy sink; batch here "
          "is refused, naming it.)")
      .one_of({"per_row", "batch"});
  map.key("pipeline", &Config::pipeline, "Send rows without waiting for each answer (libpq pipeline mode).");
  map.key("connections", &Config::connections,
          "Connections writing in parallel; commits on different connections share WAL flushes (group commit).")
      .minimum(1)
      .maximum(64);
  map.key("max_in_flight", &Config::max_in_flight, "Rows sent but not yet answered, per connection (pipeline mode).")
      .minimum(1)
      .maximum(10000);
  sdk::RetryPolicy::declare(map, &Config::retry,
                            "Reconnects after a lost connection or server restart (attempts count failures in a row "
                            "without progress; a service reconnects without bound, every 2 s at most, unless max_outage), "
                            "and retries of rows that hit a serialization failure, deadlock or resource error (attempts "
                            "per row).");
  map.key("when_unavailable", &Config::when_unavailable,
          "In a service, while the database cannot be reached: refuse (each row is failed at once, code unavailable, "
          "so that an HTTP source answers 503) or wait (rows wait for the database and hold the source back, rows in "
          "flight are decided once it is back: for sources that cannot send a row again, such as postgres-cdc or a "
          "followed folder).")
      .one_of({"refuse", "wait"});
  map.key("lookup_unanswered", &Config::lookup_unanswered,
          "After a lost connection, decide rows whose answer never arrived by looking them up (mapped columns, "
          "inserting transaction). false: report them failed, commit outcome unknown.");
  map.key("answer_timeout", &Config::answer_timeout,
          "Seconds without any answer while rows are in flight before the connection is taken as lost (a stalled "
          "network does not end a TCP connection by itself).")
      .exclusive_minimum(0);
  map.key("settle_timeout", &Config::settle_timeout,
          "Seconds to wait for the server process of a lost connection to end before its rows are decided.")
      .minimum(0);
  return map;
}

std::string statement_name(std::size_t index) { return "etl_write_" + std::to_string(index); }

/// The outcome of a row the sink refuses at once because its database is unreachable.
sdk::Outcome unavailable(const std::string& reason) { return sdk::Outcome::failed(reason, "unavailable"); }

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

  PostgresRowByRowSink(const Config& config, sdk::Context& context)
      : context_(context),
        plan_(config),
        connector_(ConnectTarget::from(config, config.answer_timeout), context, config.retry),
        state_(context, connector_.target().where, "row") {
    if (config.commit == "batch") {
      throw sdk::ConfigError("/commit",
                             "commit: batch is the postgres-copy sink now: set \"plugin\": \"postgres-copy\" (its keys: "
                             "batch_rows, batch_bytes, guess_failures, connections, ...; see its README)");
    }
    // pipeline: false is the same protocol with one row in flight: one round trip per row.
    window_ = config.pipeline ? static_cast<std::size_t>(config.max_in_flight) : 1;
    connection_count_ = static_cast<std::size_t>(config.connections);
    retry_ = config.retry;
    policy_ = ResolverPolicy{plan_.mode(), plan_.idempotent(), config.lookup_unanswered};
    settle_timeout_ms_ = static_cast<long>(config.settle_timeout * 1000);
    wait_when_unavailable_ = config.when_unavailable == "wait";
    for (std::size_t i = 0; i < plan_.statements().size(); ++i) {
      const WriteStatement& statement = plan_.statements()[i];
      statements_.push_back(Statement{statement_name(i), statement.sql, static_cast<int>(statement.parameters.size())});
    }
  }

  ~PostgresRowByRowSink() override {
    if (dispatcher_) dispatcher_->abort();
    for (auto& worker : workers_) {
      if (worker->thread.joinable()) worker->thread.join();
    }
  }

  void open(sdk::OutcomeReceiver& outcomes) override {
    outcomes_ = &outcomes;
    // One budget for all: each connection's window, and as much again queued behind it.
    dispatcher_ = std::make_unique<Dispatcher>(connection_count_, connection_count_ * window_ * 3);
    if (wait_when_unavailable_ && connector_.service()) {
      dispatcher_->hold_while_down([this] { return state_.stopping() || context_.stop_requested(); });
      state_.rows_wait_when_down();
    }
    for (std::size_t i = 0; i < connection_count_; ++i) workers_.push_back(std::make_unique<Worker>(i));
    const auto prepare = [this](PgSession& session) { prepare_statements(session); };
    if (connector_.service()) {
      // A service starts whatever the database does: one attempt each, and the workers go on
      // trying. A configuration that can never work (a wrong password, no such table) still
      // ends it here.
      bool any = false;
      for (auto& worker : workers_) {
        try {
          worker->session = connector_.open_once(prepare);
          any = true;
        } catch (const ConnectionLost& e) {
          state_.connection_down(worker->index, connection_count_, e.what());
          dispatcher_->down(worker->index, state_.unreachable_reason());
        }
        if (worker->session) state_.connection_up(worker->index, connection_count_);
      }
      if (!any) context_.log(sdk::LogLevel::warning, "the service starts without its database; it is not ready until it answers");
    } else {
      std::vector<PgSession> sessions = connector_.open_all(connection_count_, prepare);
      for (std::size_t i = 0; i < connection_count_; ++i) workers_[i]->session = std::move(sessions[i]);
    }
    if (PGconn* first = first_connection()) {
      context_.log(sdk::LogLevel::info,
                   "connected to PostgreSQL " + std::to_string(PQserverVersion(first) / 10000) + " at " +
                       connector_.target().where + " (" + std::to_string(connection_count_) + " connection(s), " +
                       (window_ > 1 ? "pipeline mode, " + std::to_string(window_) + " rows in flight each"
                                    : std::string("serial")) +
                       ", TLS " + (PQsslInUse(first) ? "on" : "off") +
                       (connector_.target().mode->prepared() ? "" : ", unnamed statements (transaction pooler)") + ")");
    }
    for (auto& worker : workers_) {
      Worker* raw = worker.get();
      worker->thread = std::thread([this, raw] { work(*raw); });
    }
  }

  void write(std::span<const sdk::Record> records) override {
    for (std::size_t i = 0; i < records.size(); ++i) {
      const sdk::Record& record = records[i];
      if (state_.stopping()) {
        // Stopped, or an error every row would meet: the rest is not attempted.
        const std::string reason = state_.stop_reason();
        for (; i < records.size(); ++i) {
          outcomes_->deliver(records[i].sequence, sdk::Outcome::failed("not attempted: " + reason));
        }
        if (state_.fatal()) throw sdk::PluginError("PostgreSQL at " + connector_.target().where + ": " + reason);
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
      if (refused->unavailable) {
        outcomes_->deliver(record.sequence, unavailable("not attempted: " + refused->reason));
        continue;
      }
      outcomes_->deliver(record.sequence, sdk::Outcome::failed("not attempted: " + refused->reason));
      // Retired for a stop: the next record takes the stop branch above. Otherwise every
      // connection gave up, and the sink has failed.
      if (!state_.stopping() && dispatcher_->all_retired()) {
        throw sdk::PluginError("PostgreSQL at " + connector_.target().where + ": " + state_.first_error());
      }
    }
  }

  void finish() override {
    dispatcher_->close();
    for (auto& worker : workers_) {
      if (worker->thread.joinable()) worker->thread.join();
    }
    if (const std::string error = state_.first_error(); !error.empty()) {
      throw sdk::PluginError("PostgreSQL at " + connector_.target().where + ": " + error);
    }
  }

 private:
  PGconn* first_connection() const {
    for (const auto& worker : workers_) {
      if (worker->session) return worker->session.get();
    }
    return nullptr;
  }

  void prepare_statements(PgSession& session) {
    for (const auto& statement : statements_) session.prepare(statement, "the write statement");
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

  /// The next row to send: a retry or resend first, else one from the dispatcher. With nothing
  /// in flight it waits for one, looking at the socket between waits: a session the server
  /// ended while idle is replaced before a row is sent on it. False when there is none (the
  /// queue is drained, or rows are in flight and none is queued).
  bool next_row(Worker& worker, bool idle, std::deque<Row>& unsent, Row& row) {
    if (!unsent.empty()) {
      row = std::move(unsent.front());
      unsent.pop_front();
      return true;
    }
    if (!idle) return dispatcher_->take(worker.index, row, /*wait=*/false);
    while (!dispatcher_->take_for(worker.index, row, kIdleCheck)) {
      if (dispatcher_->drained(worker.index) || state_.stopping()) return false;
      if (!worker.session.still_open()) throw ConnectionLost("the server ended the idle session (" + worker.session.error_message() + ")");
    }
    if (!worker.session.still_open()) {
      unsent.push_front(std::move(row));
      throw ConnectionLost("the server ended the idle session (" + worker.session.error_message() + ")");
    }
    return true;
  }

  /// Sends and answers rows on a live connection until its queue is closed and drained.
  /// Throws ConnectionLost with the undecided rows left in `in_flight`.
  void pump(Worker& worker, std::deque<SentRow>& in_flight, std::deque<Row>& unsent, sdk::Backoff& connection_backoff) {
    PipelineWindow window(worker.session, plan_.mode() == WriteMode::statement);
    while (true) {
      while (!state_.stopping() && in_flight.size() < window_) {
        Row row;
        if (!next_row(worker, in_flight.empty(), unsent, row)) break;
        // In flight before it is sent: a send that fails half-way leaves a row to decide.
        in_flight.push_back(SentRow{std::move(row), std::nullopt});
        window.send(statements_[in_flight.back().row.statement], plan_.parameters(in_flight.back().row));
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
      if (shows_pooler(answers.statement.sqlstate) && worker.session.prepared()) {
        // A transaction pooler moved this row to a server connection that lacks the statement
        // (26000) before it ran: from now on statements go as text, and the row is sent again.
        if (connector_.target().mode->pooler_seen()) {
          context_.log(sdk::LogLevel::warning, "PostgreSQL at " + connector_.target().where +
                                                   " is reached through a transaction pooler (" + answers.statement.message +
                                                   "): sending statements unnamed from now on; set prepared_statements: "
                                                   "false to say so");
        }
        Row again = std::move(oldest.row);
        in_flight.pop_front();
        unsent.push_front(std::move(again));
        continue;
      }
      // A change's delete that finds no row is settled as a replayed one is: absent.
      const std::size_t statement = oldest.row.statement;
      Answer answer = interpret_answers(plan_.answer_mode(statement), oldest.row.replayed || plan_.absent_is_ok(statement),
                                        plan_.table(), answers);
      if (answer.connection_lost) throw ConnectionLost(answer.lost_reason);
      connection_backoff.succeeded();
      // Raised only for decided rows: the ids of rows still in flight may not survive a crash.
      if (oldest.xid) {
        auto& floor = worker.session.backend().floor;
        floor = std::max(floor, *oldest.xid + 1);
      }
      Row row = std::move(oldest.row);
      in_flight.pop_front();
      if (answer.retry && ++row.attempts < retry_.attempts) {
        // Bound: retry.attempts tries of this row (a race or a resource, not an outage).
        const double delay = retry_.delay(row.attempts, jitter_unit(row.sequence));
        context_.log(sdk::LogLevel::warning, "record " + std::to_string(row.sequence) + ": " + answer.outcome.message +
                                                 " (" + answer.outcome.code + (answer.at_commit ? ", at commit" : "") +
                                                 "); trying again in " + sdk::seconds_text(delay));
        if (sdk::sleep_unless_stopped(context_, delay)) {
          unsent.push_front(std::move(row));
          continue;
        }
      } else if (answer.retry) {
        answer.outcome.message += " (gave up after " + std::to_string(row.attempts) + " attempts)";
      }
      if (answer.fatal && connector_.service() && answer.outcome.code == "25006") {
        // A read-only server is a state a service waits out (a failover under way, a primary
        // being demoted restarts and is reconnected, default_transaction_read_only for
        // maintenance): the row is failed (its client is answered 503) and the service goes on.
        answer.fatal = false;
        answer.outcome = sdk::Outcome::failed(answer.outcome.message + " (the database is read-only: a standby, or a failover under way)", "25006");
      }
      if (answer.fatal) state_.declare_fatal(answer.outcome.code + ": " + answer.outcome.message);
      const bool stored = answer.outcome.status == sdk::Status::ok && !answer.at_commit;
      decide(worker, row, std::move(answer.outcome), stored ? answer.xid : std::nullopt);
    }
  }

  /// A number in [0, 1) for a row's retry jitter, different per row.
  static double jitter_unit(std::uint64_t sequence) {
    std::uint64_t z = sequence * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }

  /// After a stop: the rows this connection has not sent are reported, and no more are taken.
  void retire_unsent(Worker& worker, std::deque<Row>& unsent) {
    const std::string reason = "not attempted: " + state_.stop_reason();
    for (auto& row : unsent) decide(worker, row, sdk::Outcome::failed(reason));
    unsent.clear();
    for (auto& row : dispatcher_->retire(worker.index, state_.stop_reason())) {
      outcomes_->deliver(row.sequence, sdk::Outcome::failed(reason));
    }
  }

  /// Decides the rows in flight on a lost connection over a new one (see commit_resolver.hpp).
  /// Returns the number of rows decided (reported); the others are sent again.
  std::size_t resolve(Worker& worker, const Backend& lost, std::deque<SentRow>& in_flight, std::deque<Row>& unsent) {
    SessionQueries queries(worker.session, plan_, state_.stopping() ? std::min(settle_timeout_ms_, 2000L) : settle_timeout_ms_);
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
    if (record) state_.record(reason);
    context_.log(sdk::LogLevel::error, "PostgreSQL at " + connector_.target().where + ": " + reason);
    for (auto& sent : in_flight) decide(worker, sent.row, sdk::Outcome::commit_unknown(reason));
    for (auto& row : unsent) decide(worker, row, sdk::Outcome::failed("not attempted: " + reason));
    for (auto& row : dispatcher_->retire(worker.index, reason)) {
      outcomes_->deliver(row.sequence, sdk::Outcome::failed("not attempted: " + reason));
    }
    in_flight.clear();
    unsent.clear();
  }

  /// A service's connection that lost its session: nothing new waits on it. It takes no rows
  /// until it is back, and the rows queued for it or not sent are refused at once (unavailable);
  /// the rows in flight wait for the server to come back (see kOutageAfter).
  void go_down(Worker& worker, const std::string& reason, std::deque<Row>& unsent) {
    state_.connection_down(worker.index, connection_count_, reason);
    if (dispatcher_->holding()) {
      (void)dispatcher_->down(worker.index, state_.unreachable_reason());  // its rows wait for it
      return;  // and so do the ones it had taken (unsent)
    }
    const std::string refused = state_.unreachable_reason();
    for (auto& row : unsent) decide(worker, row, unavailable("not attempted: " + refused));
    for (auto& row : dispatcher_->down(worker.index, refused)) outcomes_->deliver(row.sequence, unavailable("not attempted: " + refused));
    unsent.clear();
  }

  /// Rows in flight whose server has not come back within kOutageAfter: their fate cannot be
  /// asked, and the requests behind them do not wait longer.
  void give_up_in_flight(Worker& worker, const std::string& reason, std::deque<SentRow>& in_flight) {
    for (auto& sent : in_flight) {
      decide(worker, sent.row, sdk::Outcome::commit_unknown(reason + "; the database did not come back within " +
                                                            sdk::seconds_text(kOutageAfter.count())));
    }
    in_flight.clear();
  }

  void work(Worker& worker) {
    std::deque<SentRow> in_flight;  // sent, not yet decided
    std::deque<Row> unsent;         // to send before new rows: retries and rows found not committed
    std::optional<Backend> lost;    // the server process whose rows in_flight holds, once its connection is gone
    sdk::Backoff backoff = connector_.backoff();  // connection failures since the last answered row
    bool stop_resolution_tried = false;
    bool down = !worker.session;
    const auto prepare = [this](PgSession& session) { prepare_statements(session); };
    while (true) {
      try {
        if (!worker.session) worker.session = connector_.open_once(prepare, /*for_stop=*/state_.stopping());
        if (down) {
          down = false;
          dispatcher_->up(worker.index);
        }
        state_.connection_up(worker.index, connection_count_);
        if (lost) {
          // Rows decided (committed, or undecidable and reported) are progress; rows found
          // not committed and sent again are not, so a server that drops every connection
          // before its rows are answered still spends the budget.
          if (resolve(worker, *lost, in_flight, unsent) != 0) backoff.succeeded();
          lost.reset();
        }
        pump(worker, in_flight, unsent, backoff);
        if (state_.stopping()) retire_unsent(worker, unsent);
        return;
      } catch (const ConnectionLost& e) {
        if (!lost && !in_flight.empty()) lost = worker.session.backend();
        worker.session = PgSession{};
        const auto delay = backoff.failed();
        if (state_.stopping()) {
          // One quick try to decide the rows in flight (their server process is ended first,
          // so none can commit later); what stays undecided is reported commit-unknown.
          if (lost && !stop_resolution_tried) {
            stop_resolution_tried = true;
            continue;
          }
          give_up(worker, std::string(e.what()) + " (" + state_.stop_reason() + ")", in_flight, unsent, /*record=*/false);
          return;
        }
        if (!delay) {
          give_up(worker, std::string(e.what()) + " (database unreachable " + backoff.spent_text() + ")", in_flight, unsent);
          return;
        }
        if (connector_.service() && !down && backoff.failures() == 1) {
          // The first failure in a row: a session the server ended (a restart that is over, an
          // administrator) is usually replaced at once; only when that fails is it an outage.
          continue;
        }
        if (connector_.service()) {
          if (!down) {
            // Nothing new waits on a lost session: the other connections, or a 503, answer it.
            go_down(worker, e.what(), unsent);
            down = true;
          }
          if (lost && !dispatcher_->holding() && backoff.outage_seconds() >= kOutageAfter.count()) {
            give_up_in_flight(worker, e.what(), in_flight);
            lost.reset();
          }
        }
        if (!down) {
          context_.log(sdk::LogLevel::warning, "connection " + std::to_string(worker.index + 1) + " to PostgreSQL at " +
                                                   connector_.target().where + ": " + e.what() + "; reconnecting in " +
                                                   sdk::seconds_text(*delay) + " (" + backoff.progress_text() + ", " +
                                                   std::to_string(in_flight.size()) + " row(s) to decide)");
        }
        if (!sdk::sleep_unless_stopped(context_, *delay)) {
          if (lost && !stop_resolution_tried) {
            stop_resolution_tried = true;
            continue;
          }
          give_up(worker, std::string(e.what()) + " (the run was stopped)", in_flight, unsent, /*record=*/false);
          return;
        }
      } catch (const std::exception& e) {
        // A configuration that can never work (the table is gone, a statement the server
        // refuses): every row would meet it.
        state_.declare_fatal(e.what());
        give_up(worker, e.what(), in_flight, unsent);
        return;
      }
    }
  }

  sdk::Context& context_;
  RowPlan plan_;
  Connector connector_;
  SinkState state_;
  ResolverPolicy policy_;
  std::vector<Statement> statements_;
  std::size_t window_ = 1;
  std::size_t connection_count_ = 1;
  sdk::RetryPolicy retry_;
  long settle_timeout_ms_ = 10000;
  bool wait_when_unavailable_ = false;

  sdk::OutcomeReceiver* outcomes_ = nullptr;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::vector<std::unique_ptr<Worker>> workers_;
  EqualRowFloors floors_;
};

}  // namespace
}  // namespace etl::plugins::postgres

ETL_PLUGIN(etl::plugins::postgres::PostgresRowByRowSink, "postgres-row-by-row", "3.0.0",
           "Writes each record to PostgreSQL in its own transaction: insert, upsert, update, delete or a statement "
           "(pipelined, several connections)");
// The short name pipelines may use for the same plugin.
ETL_PLUGIN_ALIASES("postgres");
