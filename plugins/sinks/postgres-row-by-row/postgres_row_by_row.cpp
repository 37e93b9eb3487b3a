// postgres-row-by-row: inserts each record in its own transaction and reports each outcome.
//
// Rows are sent in libpq pipeline mode, with a sync point after every row, over several
// connections: each row stays its own implicit transaction (an error aborts that row only),
// while the network round trip and the commit's WAL flush of many rows overlap.
//
// A lost connection is re-established with backoff, and the rows that were in flight on it
// are decided before anything is sent again (see resolve()): by their transaction ids, which
// every insert returns, or by looking them up. docs/guarantees.md states the result.

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <atomic>
#include <future>
#include <optional>
#include <map>
#include <random>
#include <set>
#include <mutex>
#include <thread>

#include <Poco/Data/PostgreSQL/SessionHandle.h>
#include <Poco/Exception.h>

#include "etl/sdk.hpp"
#include "etl/sdk/retry.hpp"
#include "postgres/named_parameters.hpp"
#include "postgres/pg_connection.hpp"
#include "postgres/pg_values.hpp"
#include "sql_text.hpp"
#include "transaction_ids.hpp"

namespace etl::plugins::postgres {
namespace {

using nlohmann::json;

/// The config as declared (see config_map()).
struct Config : PgConnection {
  std::string schema;
  std::string table;
  std::map<std::string, std::string> columns;
  std::string mode = "insert";
  std::vector<std::string> conflict_columns;
  std::optional<std::vector<std::string>> update_columns;
  std::string where;
  std::vector<std::string> key_columns;
  std::string statement;
  std::map<std::string, std::string> statements;
  std::string statement_field;
  bool idempotent = false;
  bool pipeline = true;
  int connections = 16;
  int max_in_flight = 64;
  sdk::RetryPolicy retry;
  bool lookup_unanswered = true;
  double answer_timeout = 60;
  double settle_timeout = 10;
};

sdk::ConfigMap<Config> declare_config() {
  sdk::ConfigMap<Config> map;
  declare_connection(map);
  map.key("schema", &Config::schema, "Schema of the table; empty: the search_path decides.");
  map.key("table", &Config::table, "Table to write to (every mode but statement).");
  map.key("columns", &Config::columns,
          "Record field -> column, e.g. {\"token\": \"data\"} (every mode but statement, which names fields itself).")
      .schema({{"additionalProperties", {{"type", "string"}, {"minLength", 1}}}});
  map.key("mode", &Config::mode,
          "insert; upsert (INSERT ... ON CONFLICT (conflict_columns) DO UPDATE); update or delete by key_columns (no row "
          "with the key: rejected, code not_found). Each record is still its own transaction.")
      .one_of({"insert", "upsert", "update", "delete", "statement"});
  map.key("conflict_columns", &Config::conflict_columns, "upsert: the columns of the unique constraint to meet.");
  map.key("update_columns", &Config::update_columns,
          "upsert: the columns a conflict updates (default: every mapped column but the conflict columns; [] does nothing).");
  map.key("where", &Config::where,
          "upsert: a guard on the update, in SQL over the table (by its name) and EXCLUDED, e.g. "
          "\"EXCLUDED.updated_at > customers.updated_at\" (only if newer). A row the guard keeps is ok, code unchanged.");
  map.key("key_columns", &Config::key_columns, "update, delete: the columns that find the row.");
  map.key("statement", &Config::statement,
          "statement: SQL with the record's fields as named parameters ($email), always bound. A SELECT or RETURNING "
          "puts its first row in the outcome's detail; no row, or no row touched, is rejected with code not_found.");
  map.key("statements", &Config::statements,
          "statement: a statement per value of statement_field (e.g. created/updated/deleted); another value is "
          "rejected with code unknown_statement.");
  map.key("statement_field", &Config::statement_field, "statement: the field whose value chooses from statements.");
  map.key("idempotent", &Config::idempotent,
          "statement: replaying the statement after a lost connection is safe (it sets values rather than adds); "
          "without it such a row is reported commit outcome unknown.");
  map.key("pipeline", &Config::pipeline, "Send rows without waiting for each answer (libpq pipeline mode).");
  map.key("connections", &Config::connections,
          "Connections writing in parallel; commits on different connections share WAL flushes (group commit).")
      .minimum(1)
      .maximum(64);
  map.key("max_in_flight", &Config::max_in_flight, "Rows sent but not yet answered, per connection (pipeline mode).")
      .minimum(1)
      .maximum(10000);
  sdk::RetryPolicy::declare(map, &Config::retry,
                            "Reconnects after a lost connection or server restart, and retries of rows that hit a "
                            "serialization failure, deadlock or resource error: attempts count failures in a row "
                            "without progress.");
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

struct Row {
  std::uint64_t sequence = 0;
  std::vector<std::optional<std::string>> values;
  int attempts = 0;  // tries that ended in a retryable error (serialization, deadlock, resources)
  bool replayed = false;  // sent again after its connection was lost (idempotent modes)
  std::uint16_t statement = 0;  // which of the sink's statements writes it
};

/// A row sent on a connection and not yet decided.
struct SentRow {
  Row row;
  /// The row's transaction id, once the insert's result arrived; its commit may still be unanswered.
  std::optional<std::uint64_t> xid;
};

/// The server process behind a connection: what to ask about once the connection is lost.
struct Backend {
  int pid = 0;
  /// backend_start: a pid alone may be reused after a server restart.
  std::string started;
  /// Every transaction id this process assigned to a row not yet decided is at least this.
  std::uint64_t floor = 0;
  /// pg_postmaster_start_time(): after a crash restart, transaction ids that never reached
  /// the WAL are handed out again, so an id's status then no longer speaks for our row.
  std::string server_started;
};

enum class ErrorKind {
  row,         // the row itself is refused: retrying cannot help
  fatal,       // every row will meet it (no table, no privilege, read-only): stop the run
  retry_row,   // the row's transaction lost a race or a resource: the same row may succeed later
  connection,  // the connection or the server went away: reconnect, decide the rows in flight
  other,
};

ErrorKind classify(std::string_view sqlstate) {
  if (sqlstate.starts_with("23") || sqlstate.starts_with("22")) return ErrorKind::row;
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate.starts_with("53")) return ErrorKind::retry_row;
  // undefined table / column / schema / function, insufficient privilege, read-only transaction
  for (const std::string_view every_row : {"42P01", "42703", "3F000", "42883", "42501", "25006"}) {
    if (sqlstate == every_row) return ErrorKind::fatal;
  }
  if (sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return ErrorKind::connection;
  }
  return ErrorKind::other;
}

/// Connection failures that waiting cannot cure. libpq gives no SQLSTATE for a failed
/// connection, so the server's (English) message is all there is to go by; anything not
/// listed here is retried, which costs time but never a row.
bool is_permanent_connect_failure(std::string_view message) {
  for (const std::string_view marker :
       {"authentication failed", "no pg_hba.conf entry", "does not exist",
        "permission denied", "certificate verify failed", "server does not support SSL",
        "does not match host name", "root certificate file", "could not read certificate",
        "invalid connection option", "password is missing", "no password supplied"}) {
    if (message.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

/// Rows waiting for one connection. Bounded: write() blocks while it is full (backpressure).
class RowQueue {
 public:
  explicit RowQueue(std::size_t capacity) : capacity_(capacity) {}

  /// False once the connection has given up; `reason()` says why.
  bool push(Row row) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return rows_.size() < capacity_ || retired_ || aborted_; });
    if (retired_ || aborted_) return false;
    rows_.push_back(std::move(row));
    not_empty_.notify_one();
    return true;
  }

  /// Waits for a row; false once the queue is closed and empty, or aborted.
  bool pop_wait(Row& row) {
    std::unique_lock lock(mutex_);
    not_empty_.wait(lock, [&] { return !rows_.empty() || closed_ || aborted_; });
    return take(row);
  }

  bool try_pop(Row& row) {
    std::lock_guard lock(mutex_);
    return take(row);
  }

  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    not_empty_.notify_all();
  }
  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  /// The connection gives up: no row is accepted from now on; returns the rows left.
  std::vector<Row> retire(const std::string& reason) {
    std::lock_guard lock(mutex_);
    retired_ = true;
    reason_ = reason;
    std::vector<Row> left(std::make_move_iterator(rows_.begin()), std::make_move_iterator(rows_.end()));
    rows_.clear();
    not_full_.notify_all();
    return left;
  }
  bool retired() {
    std::lock_guard lock(mutex_);
    return retired_;
  }
  std::string reason() {
    std::lock_guard lock(mutex_);
    return reason_;
  }

 private:
  bool take(Row& row) {
    if (aborted_ || rows_.empty()) return false;
    row = std::move(rows_.front());
    rows_.pop_front();
    not_full_.notify_one();
    return true;
  }

  std::size_t capacity_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::deque<Row> rows_;
  bool closed_ = false;
  bool aborted_ = false;
  bool retired_ = false;
  std::string reason_;
};

// Results, error fields and one-line messages: the helpers every PostgreSQL plugin shares
// (postgres/pg_connection.hpp).
using Result = PgResult;

std::string connection_message(PGconn* connection) {
  std::string message = one_line(PQerrorMessage(connection));
  return message.empty() ? "connection lost" : message;
}

/// The connection is gone, or cannot be made right now: worth reconnecting.
class ConnectionLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Connection {
  std::unique_ptr<Poco::Data::PostgreSQL::SessionHandle> session;
  Backend backend;

  PGconn* get() const { return *session; }
  explicit operator bool() const { return session != nullptr; }
};

/// The statement failed because the connection or the server went away.
bool connection_gone(PGconn* connection, const PGresult* result) {
  return result == nullptr || PQstatus(connection) == CONNECTION_BAD ||
         classify(error_field(result, PG_DIAG_SQLSTATE)) == ErrorKind::connection;
}

/// The result of a statement run outside pipeline mode; throws ConnectionLost when it failed
/// because the connection went away. Any other error is returned for the caller to judge.
Result checked(PGconn* connection, Result result) {
  const ExecStatusType status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && connection_gone(connection, result.get())) {
    const std::string message = one_line(error_field(result.get(), PG_DIAG_MESSAGE_PRIMARY));
    throw ConnectionLost(message.empty() ? connection_message(connection) : message);
  }
  return result;
}

Result execute(PGconn* connection, const char* sql, const std::vector<const char*>& values = {}) {
  return checked(connection, Result(PQexecParams(connection, sql, static_cast<int>(values.size()), nullptr,
                                                 values.data(), nullptr, nullptr, 0)));
}

/// How long rows in flight may take to be answered once the run is asked to stop.
constexpr std::chrono::milliseconds kStopGrace{2000};
constexpr const char* kLookupStatement = "etl_lookup";

/// One writer: a connection, its queue of rows, and the thread that drives both.
struct Worker {
  explicit Worker(std::size_t index, std::size_t capacity) : index(index), queue(capacity) {}
  std::size_t index;
  RowQueue queue;
  Connection connection;
  /// When this connection first saw the stop request: rows in flight get kStopGrace from then.
  std::optional<std::chrono::steady_clock::time_point> stop_seen;
  std::thread thread;
};

class PostgresRowByRowSink final : public sdk::Sink {
 public:
  static sdk::ConfigMap<Config> config_map() { return declare_config(); }

  PostgresRowByRowSink(const Config& config, sdk::Context& context) : context_(context) {
    where_ = describe(config);
    std::map<std::string, std::string> parameters = connection_parameters(config);
    conninfo_ = connection_string(parameters);
    // After a stop only a quick attempt is worth making (the stop must end within seconds).
    // Its statements are bounded too: a locked table must not hold the stop.
    parameters["connect_timeout"] = "2";
    parameters["options"] = "-c statement_timeout=2000";
    stop_conninfo_ = connection_string(parameters);
    schema_ = config.schema;
    table_ = config.table;
    for (const auto& [record_field, column] : config.columns) {
      fields_.push_back(record_field);
      columns_.push_back(column);
    }
    if (config.table.empty() && config.mode != "statement") {
      throw sdk::ConfigError("/table", "give the table to write to (mode " + config.mode + ")");
    }
    if (fields_.empty() && config.mode != "statement") {
      throw sdk::ConfigError("/columns", "map at least one record field to a column, e.g. {\"token\": \"data\"}");
    }
    if (config.mode == "statement") {
      choose_user_statements(config);
    } else {
      choose_statement(config);
    }
    // pipeline: false is the same protocol with one row in flight: one round trip per row.
    window_ = config.pipeline ? static_cast<std::size_t>(config.max_in_flight) : 1;
    connection_count_ = static_cast<std::size_t>(config.connections);
    retry_ = config.retry;
    lookup_unanswered_ = config.lookup_unanswered;
    settle_timeout_ms_ = static_cast<long>(config.settle_timeout * 1000);
    answer_timeout_ms_ = std::max(1L, static_cast<long>(config.answer_timeout * 1000));
  }

  ~PostgresRowByRowSink() override {
    for (auto& worker : workers_) worker->queue.abort();
    for (auto& worker : workers_) {
      if (worker->thread.joinable()) worker->thread.join();
    }
  }

  void open(sdk::OutcomeReceiver& outcomes) override {
    outcomes_ = &outcomes;
    lookup_sql_ = lookup_statement(schema_, table_, columns_);
    for (std::size_t i = 0; i < connection_count_; ++i) {
      workers_.push_back(std::make_unique<Worker>(i, window_ * 2));
    }
    // Connect in parallel: a TLS handshake plus SCRAM authentication is several round trips,
    // which for 16 connections to a distant server would otherwise add up.
    std::vector<std::future<Connection>> pending;
    for (std::size_t i = 0; i < connection_count_; ++i) {
      pending.push_back(std::async(std::launch::async, [this, i] { return connect_with_retry(i == 0); }));
    }
    std::string first_failure;
    for (std::size_t i = 0; i < connection_count_; ++i) {
      try {
        workers_[i]->connection = pending[i].get();
      } catch (const std::exception& e) {
        if (first_failure.empty()) first_failure = e.what();
      }
    }
    if (!first_failure.empty()) throw sdk::PluginError(first_failure);
    PGconn* first = workers_.front()->connection.get();
    context_.log(sdk::LogLevel::info,
                 "connected to PostgreSQL " + std::to_string(PQserverVersion(first) / 10000) + " at " + where() +
                     " (" + std::to_string(connection_count_) + " connection(s), " +
                     (window_ > 1 ? "pipeline mode, " + std::to_string(window_) + " rows in flight each"
                                  : std::string("serial")) +
                     ", TLS " + (PQsslInUse(first) ? "on" : "off") + ")");
    for (auto& worker : workers_) {
      Worker* raw = worker.get();
      worker->thread = std::thread([this, raw] { work(*raw); });
    }
  }

  void write(std::span<const sdk::Record> records) override {
    for (std::size_t i = 0; i < records.size(); ++i) {
      const sdk::Record& record = records[i];
      if (stopping()) {
        // Stopped, or an error every row would meet: the rest is not attempted.
        const std::string reason = stop_reason();
        for (; i < records.size(); ++i) {
          outcomes_->deliver(records[i].sequence, sdk::Outcome::failed("not attempted: " + reason));
        }
        if (fatal_.load()) throw sdk::PluginError("PostgreSQL at " + where() + ": " + reason);
        return;
      }
      Row row;
      row.sequence = record.sequence;
      if (!fill_values(record, row)) continue;
      // Equal rows always go to the same connection, in order: after a lost connection, a
      // stored copy of a row can then only be this row's (or an earlier one's on the same
      // connection, which has been decided already).
      Worker& worker = *workers_[route(row)];
      if (worker.queue.push(std::move(row))) continue;
      outcomes_->deliver(record.sequence, sdk::Outcome::failed("not attempted: " + worker.queue.reason()));
      // Retired for a stop: the next record takes the stop branch above. Otherwise every
      // connection gave up, and the sink has failed.
      if (!stopping() && std::all_of(workers_.begin(), workers_.end(), [](const auto& w) { return w->queue.retired(); })) {
        throw sdk::PluginError("PostgreSQL at " + where() + ": " + first_error());
      }
    }
  }

  void finish() override {
    for (auto& worker : workers_) worker->queue.close();
    for (auto& worker : workers_) {
      if (worker->thread.joinable()) worker->thread.join();
    }
    if (const std::string error = first_error(); !error.empty()) {
      throw sdk::PluginError("PostgreSQL at " + where() + ": " + error);
    }
  }

 private:
  const std::string& where() const { return where_; }

  /// statement mode: the user's statements, their named parameters turned into positions over
  /// one list of fields (fields_), which is what a row carries.
  void choose_user_statements(const Config& config) {
    mode_ = WriteMode::statement;
    idempotent_ = config.idempotent;
    if (config.statement.empty() == config.statements.empty()) {
      throw sdk::ConfigError("/statement", "statement mode needs either statement or statements (with statement_field)");
    }
    if (!config.statements.empty() && config.statement_field.empty()) {
      throw sdk::ConfigError("/statement_field", "statements need statement_field: the field that chooses one");
    }
    if (!config.columns.empty()) throw sdk::ConfigError("/columns", "statement mode names its fields in the statement");
    std::vector<std::pair<std::string, std::string>> texts;
    if (!config.statement.empty()) texts.emplace_back("", config.statement);
    for (const auto& [value, text] : config.statements) texts.emplace_back(value, text);
    for (const auto& [value, text] : texts) {
      postgres::NamedStatement named;
      try {
        named = postgres::parse_named_parameters(text);
      } catch (const std::invalid_argument& e) {
        throw sdk::ConfigError(value.empty() ? "/statement" : "/statements/" + value, e.what());
      }
      WriteStatement statement;
      statement.sql = named.sql;
      for (const auto& field : named.fields) {
        auto at = std::find(fields_.begin(), fields_.end(), field);
        if (at == fields_.end()) {
          fields_.push_back(field);
          columns_.push_back(field);
          at = fields_.end() - 1;
        }
        statement.parameters.push_back(static_cast<std::size_t>(at - fields_.begin()));
      }
      if (!value.empty()) statement_for_value_[value] = statements_.size();
      statements_.push_back(std::move(statement));
    }
    statement_field_ = config.statement_field;
  }

  /// The statement of the configured mode; its keys must be mapped columns.
  void choose_statement(const Config& config) {
    auto mapped = [&](const std::vector<std::string>& names, const char* key) {
      for (std::size_t i = 0; i < names.size(); ++i) {
        if (std::find(columns_.begin(), columns_.end(), names[i]) == columns_.end()) {
          throw sdk::ConfigError(std::string("/") + key + "/" + std::to_string(i),
                                 "column \"" + names[i] + "\" is not one of the mapped columns (see columns)");
        }
      }
    };
    std::vector<std::string> keys;
    std::vector<std::string> updates;
    if (config.mode == "insert") {
      mode_ = WriteMode::insert;
    } else if (config.mode == "upsert") {
      mode_ = WriteMode::upsert;
      if (config.conflict_columns.empty()) throw sdk::ConfigError("/conflict_columns", "upsert needs the conflict columns");
      mapped(config.conflict_columns, "conflict_columns");
      keys = config.conflict_columns;
      if (config.update_columns) {
        mapped(*config.update_columns, "update_columns");
        updates = *config.update_columns;
      } else {
        for (const auto& column : columns_) {
          if (std::find(keys.begin(), keys.end(), column) == keys.end()) updates.push_back(column);
        }
      }
    } else {
      mode_ = config.mode == "update" ? WriteMode::update : WriteMode::remove;
      if (config.key_columns.empty()) throw sdk::ConfigError("/key_columns", config.mode + " needs the key columns");
      mapped(config.key_columns, "key_columns");
      keys = config.key_columns;
      if (mode_ == WriteMode::update && keys.size() == columns_.size()) {
        throw sdk::ConfigError("/columns", "update needs a mapped column besides the key columns, to set");
      }
    }
    if (!config.where.empty() && mode_ != WriteMode::upsert) throw sdk::ConfigError("/where", "where is for upsert");
    statements_.push_back(write_statement(mode_, schema_, table_, columns_, keys, updates, config.where));
    // Rows with one key travel on one connection, so that a key's writes keep their order.
    for (const auto& key : keys) {
      key_indices_.push_back(static_cast<std::size_t>(std::find(columns_.begin(), columns_.end(), key) - columns_.begin()));
    }
  }

  /// Copies the mapped fields into `row`; false when the record was reported rejected instead.
  bool fill_values(const sdk::Record& record, Row& row) {
    if (!statement_field_.empty()) {
      const std::optional<std::string> chooser = record.text(statement_field_);
      const auto chosen = chooser ? statement_for_value_.find(*chooser) : statement_for_value_.end();
      if (chosen == statement_for_value_.end()) {
        outcomes_->deliver(record.sequence,
                           sdk::Outcome::rejected("unknown_statement", "field \"" + statement_field_ + "\" is " +
                                                                           (chooser ? "\"" + *chooser + "\"" : "missing") +
                                                                           ", for which no statement is configured"));
        return false;
      }
      row.statement = static_cast<std::uint16_t>(chosen->second);
    }
    row.values.reserve(fields_.size());
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      const sdk::Field* found = record.find(fields_[i]);
      if (found == nullptr) {
        outcomes_->deliver(record.sequence,
                           sdk::Outcome::rejected("missing_field", "the record has no field \"" + fields_[i] +
                                                          "\" (mapped to column \"" + columns_[i] + "\")"));
        return false;
      }
      // Parameters go as text: every type has one (etl/sdk/value.hpp), which PostgreSQL's
      // input functions read (bytea's \x form included).
      std::optional<std::string> text = found->value.text();
      if (text && text->find('\0') != std::string::npos) {
        // libpq passes text parameters as C strings: a NUL would silently cut the value.
        outcomes_->deliver(record.sequence,
                           sdk::Outcome::rejected("22021", "field \"" + fields_[i] +
                                                               "\" contains a NUL byte, which PostgreSQL text cannot store"));
        return false;
      }
      row.values.push_back(std::move(text));
    }
    return true;
  }

  std::size_t route(const Row& row) const {
    std::size_t hash = 0;
    auto mix = [&](const std::optional<std::string>& value) {
      const std::size_t part = value ? std::hash<std::string>{}(*value) : 0x9e3779b97f4a7c15ULL;
      hash = hash * 31 + part;
    };
    if (key_indices_.empty()) {
      for (const auto& value : row.values) mix(value);
    } else {
      for (const auto index : key_indices_) mix(row.values[index]);
    }
    return hash % workers_.size();
  }

  /// One connection attempt: connect, learn the server process, prepare the insert (unless
  /// the connection is only to decide rows after a stop: preparing waits for table locks).
  Connection connect_once(const std::string& conninfo, bool prepare_insert = true) {
    Connection connection;
    connection.session = std::make_unique<Poco::Data::PostgreSQL::SessionHandle>();
    try {
      connection.session->connect(conninfo);
    } catch (const Poco::Exception& e) {
      const std::string reason = one_line(e.message().empty() ? e.displayText() : e.message());
      const std::string message = "cannot connect to PostgreSQL at " + where() + ": " + reason;
      if (is_permanent_connect_failure(reason)) throw sdk::PluginError(message);
      throw ConnectionLost(message);
    }
    PGconn* raw = connection.get();
    Result identity = execute(raw,
                              "SELECT pg_backend_pid()::text, backend_start::text,"
                              " pg_snapshot_xmax(pg_current_snapshot())::text, pg_postmaster_start_time()::text"
                              " FROM pg_stat_activity WHERE pid = pg_backend_pid()");
    if (PQresultStatus(identity.get()) != PGRES_TUPLES_OK || PQntuples(identity.get()) != 1) {
      throw sdk::PluginError("PostgreSQL at " + where() + " did not say which server process serves the session (" +
                             error_field(identity.get(), PG_DIAG_MESSAGE_PRIMARY) + ")");
    }
    connection.backend.pid = std::stoi(PQgetvalue(identity.get(), 0, 0));
    connection.backend.started = PQgetvalue(identity.get(), 0, 1);
    connection.backend.floor = parse_transaction_id(PQgetvalue(identity.get(), 0, 2)).value_or(0);
    connection.backend.server_started = PQgetvalue(identity.get(), 0, 3);
    if (!prepare_insert) return connection;
    for (std::size_t i = 0; i < statements_.size(); ++i) {
      const WriteStatement& statement = statements_[i];
      Result prepared = checked(raw, Result(PQprepare(raw, statement_name(i).c_str(), statement.sql.c_str(),
                                                      static_cast<int>(statement.parameters.size()), nullptr)));
      if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
        throw sdk::PluginError("PostgreSQL at " + where() + " refused the write statement (" +
                               error_field(prepared.get(), PG_DIAG_SQLSTATE) + "): " +
                               error_field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY) + " [" + statement.sql + "]");
      }
    }
    return connection;
  }

  Connection connect_with_retry(bool log_retries) {
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
          context_.log(sdk::LogLevel::warning, std::string(e.what()) + "; retrying in " + seconds(delay) +
                                                   " (attempt " + std::to_string(attempt + 1) + " of " +
                                                   std::to_string(retry_.attempts) + ")");
        }
        if (!sdk::sleep_unless_stopped(context_, delay)) {
          throw sdk::PluginError(std::string(e.what()) + " (the run was stopped while waiting to retry)");
        }
      }
    }
  }

  static std::string seconds(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", value);
    return text;
  }

  void record_error(const std::string& message) {
    std::lock_guard lock(error_mutex_);
    if (first_error_.empty()) first_error_ = message;
  }
  std::string first_error() {
    std::lock_guard lock(error_mutex_);
    return first_error_;
  }

  std::vector<const char*> parameters(const Row& row) const {
    std::vector<const char*> values;
    values.reserve(row.values.size());
    for (const auto& value : row.values) values.push_back(value ? value->c_str() : nullptr);
    return values;
  }

  /// The row's values in the order of the write statement's parameters.
  static std::string statement_name(std::size_t index) { return "etl_write_" + std::to_string(index); }

  std::vector<const char*> statement_parameters(const Row& row) const {
    const WriteStatement& statement = statements_[row.statement];
    std::vector<const char*> values;
    values.reserve(statement.parameters.size());
    for (const auto index : statement.parameters) {
      const auto& value = row.values[index];
      values.push_back(value ? value->c_str() : nullptr);
    }
    return values;
  }

  void send(PGconn* connection, const Row& row) {
    const auto values = statement_parameters(row);
    if (PQsendQueryPrepared(connection, statement_name(row.statement).c_str(), static_cast<int>(values.size()), values.data(), nullptr,
                            nullptr, 0) != 1 ||
        PQpipelineSync(connection) != 1) {
      throw ConnectionLost(connection_message(connection));
    }
  }

  struct Answer {
    sdk::Outcome outcome;
    bool retry = false;  // a retryable error: the row may be sent again
    bool fatal = false;  // an error every row will meet: the run must stop
    bool at_commit = false;  // the error came at the commit (deferred constraint, serialization)
  };

  /// The sink stops taking rows: an error every row would meet, or the host asked to stop.
  bool stopping() const { return fatal_.load() || context_.stop_requested(); }

  void declare_fatal(const sdk::Outcome& outcome) {
    if (fatal_.exchange(true)) return;
    record_error(outcome.code + ": " + outcome.message + " (every row would meet this error; stopping)");
    context_.log(sdk::LogLevel::error, "PostgreSQL at " + where() + ": " + first_error());
  }

  /// Waits until PQgetResult can return without blocking, at most answer_timeout without a
  /// byte from the server: a blocking read would wait forever on a silently stalled network.
  /// Once the run is asked to stop, it waits at most kStopGrace more (a locked table or a
  /// stalled network must not hold the stop).
  void await_answer(PGconn* connection, std::optional<std::chrono::steady_clock::time_point>& stop_seen) {
    using Clock = std::chrono::steady_clock;
    auto last_byte = Clock::now();
    while (PQisBusy(connection)) {
      const auto now = Clock::now();
      if (context_.stop_requested()) {
        if (!stop_seen) stop_seen = now;
        if (now - *stop_seen >= kStopGrace) {
          throw ConnectionLost("no answer within " + seconds(std::chrono::duration<double>(kStopGrace).count()) +
                               " after the run was asked to stop");
        }
      }
      const long waited = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(now - last_byte).count());
      if (waited >= answer_timeout_ms_) {
        throw ConnectionLost("no answer from the server for " + seconds(answer_timeout_ms_ / 1000.0) +
                             " (answer_timeout)");
      }
      pollfd readable{PQsocket(connection), POLLIN, 0};
      const int ready = poll(&readable, 1, static_cast<int>(std::min<long>(100, answer_timeout_ms_ - waited)));
      if (ready < 0 && errno != EINTR) throw ConnectionLost(std::string("waiting for an answer: ") + std::strerror(errno));
      if (ready > 0) {
        if (PQconsumeInput(connection) != 1) throw ConnectionLost(connection_message(connection));
        last_byte = Clock::now();
      }
    }
  }

  /// Reads the answers to the oldest row in flight: its insert's result, then its commit (the
  /// sync point). The transaction id is kept as soon as it arrives, so a connection lost
  /// between the two still leaves the row decidable.
  Answer receive(PGconn* connection, SentRow& sent, std::optional<std::chrono::steady_clock::time_point>& stop_seen) {
    await_answer(connection, stop_seen);
    Result result(PQgetResult(connection));
    if (!result) throw ConnectionLost(connection_message(connection));
    Answer answer = classify_result(connection, result.get());
    if (mode_ == WriteMode::statement) {
      // The user's statement: its first row is the outcome's detail; nothing returned or
      // touched is "not found" (the webhook's 404).
      const ExecStatusType status = PQresultStatus(result.get());
      const std::string touched = status == PGRES_COMMAND_OK ? PQcmdTuples(result.get()) : "";
      if (status == PGRES_TUPLES_OK && PQntuples(result.get()) > 0) {
        sdk::Record row;
        postgres::set_fields_from_row(result.get(), 0, row);
        answer.outcome.detail = std::move(row.fields());
      } else if (status == PGRES_TUPLES_OK || touched == "0") {
        answer.outcome = sdk::Outcome::rejected("not_found", "the statement found no row");
      }
    } else if (PQresultStatus(result.get()) == PGRES_TUPLES_OK && PQntuples(result.get()) == 1) {
      sent.xid = parse_transaction_id(PQgetvalue(result.get(), 0, 0));
    } else if (PQresultStatus(result.get()) == PGRES_TUPLES_OK && PQntuples(result.get()) == 0) {
      // The statement touched no row: no key (update, delete), or the guard kept the stored row.
      if (mode_ == WriteMode::remove && sent.row.replayed) {
        // The first try may have deleted it before its connection was lost: absent either way.
        answer.outcome.code = "absent";
      } else if (mode_ == WriteMode::update || mode_ == WriteMode::remove) {
        answer.outcome = sdk::Outcome::rejected("not_found", "no row in " + table_ + " with the key columns' values");
      } else {
        answer.outcome.code = "unchanged";
      }
    }
    // Then the commit: the sync point ends the row's implicit transaction. An error here is
    // the commit's own (a deferred constraint, a serialization failure at commit): it is the
    // row's outcome, and the sync that follows it closes the row as usual.
    for (int ends = 0;;) {
      await_answer(connection, stop_seen);
      Result next(PQgetResult(connection));
      if (!next) {
        // The end of the insert's (or the commit error's) results; a connection that keeps
        // answering nothing is not one to wait on.
        if (++ends > 2) throw ConnectionLost("no commit answer: " + connection_message(connection));
        continue;
      }
      const ExecStatusType status = PQresultStatus(next.get());
      if (status == PGRES_PIPELINE_SYNC) break;
      if (status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR) {
        answer = classify_result(connection, next.get());
        answer.at_commit = true;
        continue;
      }
      throw ConnectionLost("no commit answer: " + connection_message(connection));
    }
    return answer;
  }

  /// The outcome a result of the row's statement (or commit) stands for.
  Answer classify_result(PGconn* connection, PGresult* result) {
    Answer answer;
    const ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
      answer.outcome = sdk::Outcome::ok();
      return answer;
    }
    const std::string sqlstate = error_field(result, PG_DIAG_SQLSTATE);
    std::string message = error_field(result, PG_DIAG_MESSAGE_PRIMARY);
    if (message.empty()) message = connection_message(connection);
    const ErrorKind kind = classify(sqlstate);
    // PIPELINE_ABORTED means the server skipped the row: it is sent again after reconnecting.
    if (connection_gone(connection, result) || status == PGRES_PIPELINE_ABORTED) throw ConnectionLost(message);
    if (kind == ErrorKind::row) {
      answer.outcome = sdk::Outcome::rejected(sqlstate, message);
    } else if (kind == ErrorKind::fatal) {
      answer.outcome = sdk::Outcome::failed(message, sqlstate);
      answer.fatal = true;
    } else {
      answer.outcome = sdk::Outcome::failed(message, sqlstate);
      answer.retry = kind == ErrorKind::retry_row;
    }
    return answer;
  }

  /// Sends and answers rows on a live connection until the queue is closed and drained.
  /// Throws ConnectionLost with the undecided rows left in `in_flight`.
  void pump(Worker& worker, std::deque<SentRow>& in_flight, std::deque<Row>& unsent, int& failures,
            std::mt19937_64& random) {
    PGconn* connection = worker.connection.get();
    if (PQenterPipelineMode(connection) != 1) throw ConnectionLost("cannot enter pipeline mode: " + connection_message(connection));
    while (true) {
      while (!stopping() && in_flight.size() < window_) {
        Row row;
        if (!unsent.empty()) {
          row = std::move(unsent.front());
          unsent.pop_front();
        } else if (!(in_flight.empty() ? worker.queue.pop_wait(row) : worker.queue.try_pop(row))) {
          break;
        }
        // In flight before it is sent: a send that fails half-way leaves a row to decide.
        in_flight.push_back(SentRow{std::move(row), std::nullopt});
        send(connection, in_flight.back().row);
      }
      if (in_flight.empty()) break;
      if (PQflush(connection) != 0) throw ConnectionLost(connection_message(connection));
      Answer answer = receive(connection, in_flight.front(), worker.stop_seen);
      failures = 0;
      // Raised only for decided rows: the ids of rows still in flight may not survive a crash.
      if (in_flight.front().xid) {
        auto& floor = worker.connection.backend.floor;
        floor = std::max(floor, *in_flight.front().xid + 1);
      }
      Row row = std::move(in_flight.front().row);
      in_flight.pop_front();
      if (answer.retry && ++row.attempts < retry_.attempts) {
        const double delay = retry_.delay(row.attempts, random);
        context_.log(sdk::LogLevel::warning, "record " + std::to_string(row.sequence) + ": " + answer.outcome.message +
                                                 " (" + answer.outcome.code + "); trying again in " + seconds(delay));
        if (sdk::sleep_unless_stopped(context_, delay)) {
          unsent.push_front(std::move(row));
          continue;
        }
      } else if (answer.retry) {
        answer.outcome.message += " (gave up after " + std::to_string(row.attempts) + " attempts)";
      }
      if (answer.fatal) declare_fatal(answer.outcome);
      outcomes_->deliver(row.sequence, std::move(answer.outcome));
    }
    PQexitPipelineMode(connection);
  }

  /// After a stop: the rows this connection has not sent are reported, and no more are taken.
  void retire_unsent(Worker& worker, std::deque<Row>& unsent) {
    const std::string reason = "not attempted: " + stop_reason();
    for (auto& row : unsent) outcomes_->deliver(row.sequence, sdk::Outcome::failed(reason));
    unsent.clear();
    for (auto& row : worker.queue.retire(stop_reason())) outcomes_->deliver(row.sequence, sdk::Outcome::failed(reason));
  }

  std::string stop_reason() {
    return fatal_.load() ? first_error() : std::string("the run was stopped");
  }

  /// Ends the lost server process if it still runs, so that none of its transactions can
  /// still commit while its rows are decided. Returns why it could not, or empty.
  std::string settle_backend(PGconn* connection, const Backend& lost) {
    const std::string pid = std::to_string(lost.pid);
    const long settle_ms = stopping() ? std::min(settle_timeout_ms_, 2000L) : settle_timeout_ms_;
    const std::string timeout = std::to_string(settle_ms);
    Result ended = execute(connection,
                           "SELECT pg_terminate_backend(pid, $3::bigint) FROM pg_stat_activity"
                           " WHERE pid = $1::int AND backend_start = $2::timestamptz",
                           {pid.c_str(), lost.started.c_str(), timeout.c_str()});
    if (PQresultStatus(ended.get()) == PGRES_TUPLES_OK &&
        (PQntuples(ended.get()) == 0 || std::string_view(PQgetvalue(ended.get(), 0, 0)) == "t")) {
      return {};
    }
    // Not allowed to end it (another role's process), or it did not end in time, or it ended
    // by itself meanwhile: wait for it to be gone.
    const std::string refusal = PQresultStatus(ended.get()) == PGRES_TUPLES_OK
                                    ? std::string("it did not end within settle_timeout")
                                    : error_field(ended.get(), PG_DIAG_MESSAGE_PRIMARY);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(settle_ms);
    while (true) {
      Result alive = execute(connection, "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int AND backend_start = $2::timestamptz",
                             {pid.c_str(), lost.started.c_str()});
      if (PQresultStatus(alive.get()) == PGRES_TUPLES_OK && PQntuples(alive.get()) == 0) return {};
      if (std::chrono::steady_clock::now() >= until) {
        return "server process " + pid + " still runs and cannot be ended (" + refusal + ")";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  /// Decides the rows that were in flight on a lost connection, using a new one. Each is
  /// committed (reported ok), not committed (sent again) or undecidable (reported failed,
  /// commit outcome unknown). Nothing is reported before every question has been answered,
  /// so a connection lost again half-way just means asking again.
  /// Returns the number of rows decided (reported); the others were sent again.
  std::size_t resolve(PGconn* connection, const Backend& lost, std::deque<SentRow>& in_flight, std::deque<Row>& unsent) {
    // Rows stay in in_flight until every question is answered: a connection lost half-way
    // leaves them intact for the next attempt.
    std::vector<std::pair<std::uint64_t, sdk::Outcome>> decided;
    std::vector<std::size_t> again;
    bool restarted = false;
    const std::string unsettled = settle_backend(connection, lost);
    if (!unsettled.empty()) {
      for (auto& sent : in_flight) decided.emplace_back(sent.row.sequence, sdk::Outcome::commit_unknown(unsettled));
    } else if (mode_ == WriteMode::statement && !idempotent_) {
      for (auto& sent : in_flight) {
        decided.emplace_back(sent.row.sequence,
                             sdk::Outcome::commit_unknown("its answer was lost with its connection, and a statement not "
                                                          "declared idempotent cannot be replayed"));
      }
    } else if (mode_ != WriteMode::insert) {
      // upsert, update, delete and idempotent statements set a row to given values: with the old server process gone
      // (nothing of it can commit any more), replaying the statement gives the row its
      // outcome, whether the first try committed or not.
      for (std::size_t index = 0; index < in_flight.size(); ++index) {
        in_flight[index].row.replayed = true;
        again.push_back(index);
      }
    } else {
      Result snapshot = execute(connection, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text, pg_postmaster_start_time()::text");
      const bool have_snapshot = PQresultStatus(snapshot.get()) == PGRES_TUPLES_OK && PQntuples(snapshot.get()) == 1;
      const std::uint64_t ceiling = have_snapshot ? parse_transaction_id(PQgetvalue(snapshot.get(), 0, 0)).value_or(0) : 0;
      restarted = have_snapshot && lost.server_started != PQgetvalue(snapshot.get(), 0, 1);
      std::string lookup_problem = lookup_unanswered_ ? std::string() : "its answer was lost (lookup_unanswered is off)";
      if (lookup_problem.empty()) {
        Result prepared = checked(connection, Result(PQprepare(connection, kLookupStatement, lookup_sql_.c_str(),
                                                               static_cast<int>(columns_.size()), nullptr)));
        if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
          lookup_problem = "its answer was lost and looking it up failed: " + error_field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY);
        }
      }
      std::uint64_t floor = lost.floor;
      std::set<std::uint64_t> claimed;
      for (std::size_t index = 0; index < in_flight.size(); ++index) {
        const SentRow& sent = in_flight[index];
        if (sent.xid && !restarted) {
          floor = std::max(floor, *sent.xid + 1);
          const std::string xid = std::to_string(*sent.xid);
          Result status = execute(connection, "SELECT pg_xact_status($1::xid8)", {xid.c_str()});
          const std::string state = PQresultStatus(status.get()) == PGRES_TUPLES_OK && !PQgetisnull(status.get(), 0, 0)
                                        ? PQgetvalue(status.get(), 0, 0)
                                        : "unknown";
          if (state == "committed") {
            decided.emplace_back(sent.row.sequence, sdk::Outcome::ok());
          } else if (state == "aborted") {
            again.push_back(index);
          } else {
            decided.emplace_back(sent.row.sequence,
                                 sdk::Outcome::commit_unknown("the server reports transaction " + xid + " as " + state));
          }
          continue;
        }
        if (!lookup_problem.empty() || ceiling == 0) {
          decided.emplace_back(sent.row.sequence, sdk::Outcome::commit_unknown(
                                                      lookup_problem.empty() ? "no transaction snapshot" : lookup_problem));
          continue;
        }
        const auto values = parameters(sent.row);
        Result found = checked(connection, Result(PQexecPrepared(connection, kLookupStatement, static_cast<int>(values.size()),
                                                                 values.data(), nullptr, nullptr, 0)));
        if (PQresultStatus(found.get()) != PGRES_TUPLES_OK) {
          if (classify(error_field(found.get(), PG_DIAG_SQLSTATE)) == ErrorKind::row) {
            // The values cannot even be compared with the column: the row cannot be stored either.
            again.push_back(index);
          } else {
            decided.emplace_back(sent.row.sequence,
                                 sdk::Outcome::commit_unknown("its answer was lost and looking it up failed: " +
                                                              error_field(found.get(), PG_DIAG_MESSAGE_PRIMARY)));
          }
          continue;
        }
        // A stored copy inserted by a transaction this process started after its last known
        // one, and not claimed by an earlier row, is this row's. (Equal rows all travel on one
        // connection, in order, so no other connection of this run can have stored it.)
        std::optional<std::uint64_t> mine;
        for (int i = 0; i < PQntuples(found.get()); ++i) {
          const auto xmin = parse_transaction_id(PQgetvalue(found.get(), i, 0));
          if (!xmin || *xmin > 0xffffffffULL) continue;
          const auto xid = widen_xmin(static_cast<std::uint32_t>(*xmin), ceiling);
          if (xid && *xid >= floor && *xid < ceiling && !claimed.contains(*xid) && (!mine || *xid < *mine)) mine = xid;
        }
        if (mine) {
          claimed.insert(*mine);
          floor = *mine + 1;
          decided.emplace_back(sent.row.sequence, sdk::Outcome::ok());
        } else {
          again.push_back(index);
        }
      }
    }
    std::size_t committed = 0, unknown = 0;
    for (const auto& [sequence, outcome] : decided) (outcome.status == sdk::Status::ok ? committed : unknown) += 1;
    context_.log(unknown == 0 ? sdk::LogLevel::info : sdk::LogLevel::warning,
                 "decided the " + std::to_string(in_flight.size()) + " row(s) in flight on the lost connection (server process " +
                     std::to_string(lost.pid) + (restarted ? ", server restarted since: decided by lookup" : "") + "): " +
                     std::to_string(committed) + " committed, " + std::to_string(again.size()) +
                     " not committed (sent again), " + std::to_string(unknown) + " undecidable");
    for (auto& [sequence, outcome] : decided) outcomes_->deliver(sequence, std::move(outcome));
    std::deque<Row> resend;
    for (const std::size_t index : again) resend.push_back(std::move(in_flight[index].row));
    in_flight.clear();
    for (auto it = resend.rbegin(); it != resend.rend(); ++it) unsent.push_front(std::move(*it));
    return decided.size();
  }

  /// Reports every row this connection still holds, and refuses new ones.
  void give_up(Worker& worker, const std::string& reason, std::deque<SentRow>& in_flight, std::deque<Row>& unsent,
               bool record = true) {
    // A stop the host asked for is no sink failure: the host already knows why it stopped.
    if (record) record_error(reason);
    context_.log(sdk::LogLevel::error, "PostgreSQL at " + where() + ": " + reason);
    for (auto& sent : in_flight) outcomes_->deliver(sent.row.sequence, sdk::Outcome::commit_unknown(reason));
    for (auto& row : unsent) outcomes_->deliver(row.sequence, sdk::Outcome::failed("not attempted: " + reason));
    for (auto& row : worker.queue.retire(reason)) {
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
        if (!worker.connection) {
          worker.connection = stopping() ? connect_once(stop_conninfo_, /*prepare_insert=*/false) : connect_once(conninfo_);
        }
        if (lost) {
          // Rows decided (committed, or undecidable and reported) are progress; rows found
          // not committed and sent again are not, so a server that drops every connection
          // before its rows are answered still spends the budget.
          if (resolve(worker.connection.get(), *lost, in_flight, unsent) != 0) failures = 0;
          lost.reset();
        }
        pump(worker, in_flight, unsent, failures, random);
        if (stopping()) retire_unsent(worker, unsent);
        return;
      } catch (const ConnectionLost& e) {
        if (!lost && !in_flight.empty()) lost = worker.connection.backend;
        worker.connection = Connection{};
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
                                                 where() + ": " + e.what() + "; reconnecting in " + seconds(delay) +
                                                 " (attempt " + std::to_string(failures + 1) + " of " +
                                                 std::to_string(retry_.attempts) + ", " + std::to_string(in_flight.size()) +
                                                 " row(s) to decide)");
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
  std::string where_;  // host:port/dbname as user, for messages
  std::string conninfo_;
  std::string stop_conninfo_;
  std::string schema_;
  std::string table_;
  std::vector<std::string> fields_;
  std::vector<std::string> columns_;
  WriteMode mode_ = WriteMode::insert;
  std::vector<WriteStatement> statements_;  // prepared as etl_write_<index>
  std::map<std::string, std::size_t> statement_for_value_;  // statement mode, by statement_field
  std::string statement_field_;
  bool idempotent_ = false;
  std::vector<std::size_t> key_indices_;  // into columns_: what routes a row (empty: all values)
  std::string lookup_sql_;
  std::size_t window_ = 1;
  std::size_t connection_count_ = 1;
  sdk::RetryPolicy retry_;
  bool lookup_unanswered_ = true;
  long settle_timeout_ms_ = 10000;
  long answer_timeout_ms_ = 60000;

  sdk::OutcomeReceiver* outcomes_ = nullptr;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex error_mutex_;
  std::string first_error_;
  std::atomic<bool> fatal_{false};
};

}  // namespace
}  // namespace etl::plugins::postgres

ETL_PLUGIN(etl::plugins::postgres::PostgresRowByRowSink, "postgres-row-by-row", "2.0.0",
           "Inserts each record into a PostgreSQL table in its own transaction (pipelined, several connections)");
