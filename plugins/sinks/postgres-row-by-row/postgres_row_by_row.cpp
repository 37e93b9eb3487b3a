// postgres-row-by-row: inserts each record in its own transaction and reports each outcome.
//
// Rows are sent in libpq pipeline mode, with a sync point after every row, over several
// connections: each row stays its own implicit transaction (an error aborts that row only),
// while the network round trip and the commit's WAL flush of many rows overlap.

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include <Poco/Data/PostgreSQL/SessionHandle.h>
#include <Poco/Exception.h>

#include "etl/sdk.hpp"
#include "sql_text.hpp"

namespace etl::plugins::postgres {
namespace {

using nlohmann::json;

constexpr const char* kSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "required": ["host", "user", "dbname", "table", "columns"],
  "properties": {
    "host": {"type": "string", "minLength": 1, "description": "Server host name or address."},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 5432},
    "user": {"type": "string", "minLength": 1},
    "password": {"type": "string", "default": "", "secret": true},
    "dbname": {"type": "string", "minLength": 1},
    "sslmode": {"type": "string", "enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
                "default": "require"},
    "sslrootcert": {"type": "string", "default": "", "description": "CA file for verify-ca / verify-full."},
    "connect_timeout": {"type": "integer", "minimum": 1, "default": 10, "description": "Seconds."},
    "application_name": {"type": "string", "default": "etl-host"},
    "schema": {"type": "string", "default": "", "description": "Schema of the table; empty: the search_path decides."},
    "table": {"type": "string", "minLength": 1},
    "columns": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1},
                "description": "Record field -> column, e.g. {\"token\": \"data\"}."},
    "pipeline": {"type": "boolean", "default": true,
                 "description": "Send rows without waiting for each answer (libpq pipeline mode)."},
    "connections": {"type": "integer", "minimum": 1, "maximum": 64, "default": 16,
                    "description": "Connections writing in parallel; commits on different connections share WAL flushes (group commit)."},
    "max_in_flight": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 64,
                      "description": "Rows sent but not yet answered, per connection (pipeline mode)."}
  }
})";

struct Row {
  std::uint64_t sequence = 0;
  std::vector<std::optional<std::string>> values;
};

/// Classes whose errors are about the row itself: retrying the same row cannot succeed.
bool is_row_error(std::string_view sqlstate) {
  return sqlstate.starts_with("23") || sqlstate.starts_with("22");
}

/// Rows waiting for a connection. Bounded: write() blocks while it is full (backpressure).
class RowQueue {
 public:
  explicit RowQueue(std::size_t capacity) : capacity_(capacity) {}

  /// False when no worker is left to take the row.
  bool push(Row row) {
    std::unique_lock lock(mutex_);
    not_full_.wait(lock, [&] { return rows_.size() < capacity_ || workers_ == 0; });
    if (workers_ == 0) return false;
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
  void set_workers(std::size_t count) {
    std::lock_guard lock(mutex_);
    workers_ = count;
  }
  void worker_gone() {
    std::lock_guard lock(mutex_);
    if (workers_ > 0) --workers_;
    not_full_.notify_all();
  }
  /// Rows no worker will ever take (every worker is gone).
  std::vector<Row> drain() {
    std::lock_guard lock(mutex_);
    std::vector<Row> left(std::make_move_iterator(rows_.begin()), std::make_move_iterator(rows_.end()));
    rows_.clear();
    return left;
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
  std::size_t workers_ = 0;
  bool closed_ = false;
  bool aborted_ = false;
};

struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

std::string field(const PGresult* result, int code) {
  const char* text = PQresultErrorField(result, code);
  return text == nullptr ? std::string() : std::string(text);
}

std::string connection_message(PGconn* connection) {
  std::string message = PQerrorMessage(connection);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message;
}

class ConnectionLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr const char* kStatementName = "etl_insert";

class PostgresRowByRowSink final : public sdk::Sink {
 public:
  explicit PostgresRowByRowSink(const sdk::PluginArgs& args) : context_(args.context) {
    const json config = sdk::parse_config(args);
    host_ = config.at("host").get<std::string>();
    port_ = config.at("port").get<int>();
    dbname_ = config.at("dbname").get<std::string>();
    user_ = config.at("user").get<std::string>();
    std::map<std::string, std::string> parameters{
        {"host", host_},
        {"port", std::to_string(port_)},
        {"user", user_},
        {"dbname", dbname_},
        {"sslmode", config.at("sslmode").get<std::string>()},
        {"connect_timeout", std::to_string(config.at("connect_timeout").get<int>())},
        {"application_name", config.at("application_name").get<std::string>()},
    };
    if (const auto password = config.at("password").get<std::string>(); !password.empty()) {
      parameters["password"] = password;
    }
    if (const auto root = config.at("sslrootcert").get<std::string>(); !root.empty()) {
      parameters["sslrootcert"] = root;
    }
    conninfo_ = connection_string(parameters);
    schema_ = config.at("schema").get<std::string>();
    table_ = config.at("table").get<std::string>();
    for (const auto& [record_field, column] : config.at("columns").items()) {
      fields_.push_back(record_field);
      columns_.push_back(column.get<std::string>());
    }
    if (fields_.empty()) {
      throw sdk::ConfigError("/columns", "map at least one record field to a column, e.g. {\"token\": \"data\"}");
    }
    pipeline_ = config.at("pipeline").get<bool>();
    connection_count_ = config.at("connections").get<std::size_t>();
    window_ = pipeline_ ? config.at("max_in_flight").get<std::size_t>() : 1;
  }

  ~PostgresRowByRowSink() override {
    if (queue_) queue_->abort();
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  void open(sdk::OutcomeReceiver& outcomes) override {
    outcomes_ = &outcomes;
    sql_ = insert_statement(schema_, table_, columns_);
    // Connect in parallel: a TLS handshake plus SCRAM authentication is several round trips,
    // which for 16 connections to a distant server would otherwise add up.
    std::vector<std::future<std::unique_ptr<Poco::Data::PostgreSQL::SessionHandle>>> pending;
    for (std::size_t i = 0; i < connection_count_; ++i) {
      pending.push_back(std::async(std::launch::async, [this] { return connect(); }));
    }
    std::string first_failure;
    for (auto& connection : pending) {
      try {
        connections_.push_back(connection.get());
      } catch (const std::exception& e) {
        if (first_failure.empty()) first_failure = e.what();
      }
    }
    if (!first_failure.empty()) throw sdk::PluginError(first_failure);
    PGconn* first = *connections_.front();
    context_.log(sdk::LogLevel::info,
                 "connected to PostgreSQL " + std::to_string(PQserverVersion(first) / 10000) +
                     " at " + where() + " (" + std::to_string(connection_count_) + " connection(s), " +
                     (pipeline_ ? "pipeline mode, " + std::to_string(window_) + " rows in flight each"
                                : std::string("serial")) +
                     ", TLS " + (PQsslInUse(first) ? "on" : "off") + ")");
    queue_ = std::make_unique<RowQueue>(connection_count_ * window_ * 2);
    queue_->set_workers(connection_count_);
    for (std::size_t i = 0; i < connection_count_; ++i) {
      threads_.emplace_back([this, i] { work(i); });
    }
  }

  void write(std::span<const sdk::Record> records) override {
    for (const auto& record : records) {
      Row row;
      row.sequence = record.sequence;
      row.values.reserve(fields_.size());
      std::string problem;
      for (std::size_t i = 0; i < fields_.size(); ++i) {
        const sdk::Field* found = record.find(fields_[i]);
        if (found == nullptr) {
          problem = "the record has no field \"" + fields_[i] + "\" (mapped to column \"" + columns_[i] + "\")";
          break;
        }
        if (found->value && found->value->find('\0') != std::string::npos) {
          // libpq passes text parameters as C strings: a NUL would silently cut the value.
          outcomes_->deliver(record.sequence,
                             sdk::Outcome::rejected("22021", "field \"" + fields_[i] +
                                                                 "\" contains a NUL byte, which PostgreSQL text cannot store"));
          problem = "-";
          break;
        }
        row.values.push_back(found->value);
      }
      if (problem == "-") continue;
      if (!problem.empty()) {
        outcomes_->deliver(record.sequence, sdk::Outcome::rejected("", problem));
        continue;
      }
      if (!queue_->push(std::move(row))) {
        throw sdk::PluginError("no connection to PostgreSQL at " + where() + " is left: " + first_error());
      }
    }
  }

  void finish() override {
    queue_->close();
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    threads_.clear();
    const std::string error = first_error();
    if (!error.empty()) {
      for (const auto& row : queue_->drain()) {
        outcomes_->deliver(row.sequence, sdk::Outcome::failed("not attempted: " + error));
      }
      throw sdk::PluginError("PostgreSQL at " + where() + ": " + error);
    }
  }

 private:
  std::string where() const {
    return host_ + ":" + std::to_string(port_) + "/" + dbname_ + " as " + user_;
  }

  std::unique_ptr<Poco::Data::PostgreSQL::SessionHandle> connect() {
    auto handle = std::make_unique<Poco::Data::PostgreSQL::SessionHandle>();
    try {
      handle->connect(conninfo_);
    } catch (const Poco::Exception& e) {
      std::string reason = e.message().empty() ? e.displayText() : e.message();
      while (!reason.empty() && (reason.back() == '\n' || reason.back() == ' ')) reason.pop_back();
      throw sdk::PluginError("cannot connect to PostgreSQL at " + where() + ": " + reason);
    }
    PGconn* connection = *handle;
    Result prepared(PQprepare(connection, kStatementName, sql_.c_str(),
                              static_cast<int>(columns_.size()), nullptr));
    if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      throw sdk::PluginError("PostgreSQL at " + where() + " refused the insert statement (" +
                             field(prepared.get(), PG_DIAG_SQLSTATE) + "): " +
                             field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY) + " [" + sql_ + "]");
    }
    return handle;
  }

  void record_error(const std::string& message) {
    std::lock_guard lock(error_mutex_);
    if (first_error_.empty()) first_error_ = message;
  }
  std::string first_error() {
    std::lock_guard lock(error_mutex_);
    return first_error_;
  }

  sdk::Outcome outcome_of(const PGresult* result, PGconn* connection) {
    const ExecStatusType status = PQresultStatus(result);
    if (status == PGRES_COMMAND_OK) return sdk::Outcome::ok();
    const std::string sqlstate = field(result, PG_DIAG_SQLSTATE);
    std::string message = field(result, PG_DIAG_MESSAGE_PRIMARY);
    if (message.empty()) message = connection_message(connection);
    if (PQstatus(connection) == CONNECTION_BAD || sqlstate.starts_with("08") || sqlstate.starts_with("57P")) {
      throw ConnectionLost(message.empty() ? "connection lost" : message);
    }
    if (is_row_error(sqlstate)) return sdk::Outcome::rejected(sqlstate, message);
    return sdk::Outcome::failed(message, sqlstate);
  }

  std::vector<const char*> parameters(const Row& row) const {
    std::vector<const char*> values;
    values.reserve(row.values.size());
    for (const auto& value : row.values) values.push_back(value ? value->c_str() : nullptr);
    return values;
  }

  void send(PGconn* connection, const Row& row) {
    const auto values = parameters(row);
    if (PQsendQueryPrepared(connection, kStatementName, static_cast<int>(values.size()),
                            values.data(), nullptr, nullptr, 0) != 1 ||
        PQpipelineSync(connection) != 1) {
      throw ConnectionLost(connection_message(connection));
    }
  }

  /// Reads the results of the oldest row in flight: its command result, then the sync point.
  sdk::Outcome receive(PGconn* connection) {
    Result result(PQgetResult(connection));
    if (!result) throw ConnectionLost(connection_message(connection));
    sdk::Outcome outcome = outcome_of(result.get(), connection);
    while (Result extra{PQgetResult(connection)}) {
      // Only the end-of-query marker (NULL) is expected here.
    }
    Result sync(PQgetResult(connection));
    if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) {
      throw ConnectionLost("unexpected reply in pipeline: " + connection_message(connection));
    }
    return outcome;
  }

  void work(std::size_t index) {
    PGconn* connection = *connections_[index];
    std::deque<Row> in_flight;
    try {
      if (pipeline_ && PQenterPipelineMode(connection) != 1) {
        throw ConnectionLost("cannot enter pipeline mode: " + connection_message(connection));
      }
      Row row;
      while (true) {
        while (in_flight.size() < window_ &&
               (in_flight.empty() ? queue_->pop_wait(row) : queue_->try_pop(row))) {
          if (pipeline_) {
            send(connection, row);
            in_flight.push_back(std::move(row));
          } else {
            const auto values = parameters(row);
            Result result(PQexecPrepared(connection, kStatementName, static_cast<int>(values.size()),
                                         values.data(), nullptr, nullptr, 0));
            in_flight.push_back(std::move(row));
            sdk::Outcome outcome = outcome_of(result.get(), connection);
            outcomes_->deliver(in_flight.front().sequence, std::move(outcome));
            in_flight.pop_front();
          }
        }
        if (in_flight.empty()) break;
        if (PQflush(connection) != 0) throw ConnectionLost(connection_message(connection));
        sdk::Outcome outcome = receive(connection);
        outcomes_->deliver(in_flight.front().sequence, std::move(outcome));
        in_flight.pop_front();
      }
      if (pipeline_) PQexitPipelineMode(connection);
    } catch (const std::exception& e) {
      const std::string reason = std::string("connection lost: ") + e.what();
      record_error(reason);
      context_.log(sdk::LogLevel::error, "PostgreSQL at " + where() + ": " + reason);
      // Rows sent on this connection may or may not have been committed.
      for (const auto& lost : in_flight) {
        outcomes_->deliver(lost.sequence, sdk::Outcome::failed(reason + " (commit outcome unknown)"));
      }
    }
    queue_->worker_gone();
  }

  sdk::Context& context_;
  std::string host_;
  int port_ = 5432;
  std::string dbname_;
  std::string user_;
  std::string conninfo_;
  std::string schema_;
  std::string table_;
  std::vector<std::string> fields_;
  std::vector<std::string> columns_;
  std::string sql_;
  bool pipeline_ = true;
  std::size_t connection_count_ = 1;
  std::size_t window_ = 1;

  sdk::OutcomeReceiver* outcomes_ = nullptr;
  std::vector<std::unique_ptr<Poco::Data::PostgreSQL::SessionHandle>> connections_;
  std::unique_ptr<RowQueue> queue_;
  std::vector<std::thread> threads_;
  std::mutex error_mutex_;
  std::string first_error_;
};

const sdk::PluginDescriptor kDescriptor{
    sdk::kDescriptorMagic,
    sdk::kAbiVersion,
    "postgres-row-by-row",
    sdk::PluginKind::sink,
    "1.0.0",
    "Inserts each record into a PostgreSQL table in its own transaction (pipelined, several connections)",
    kSchema,
    nullptr,
    &sdk::make_sink<PostgresRowByRowSink>,
    nullptr,
};

}  // namespace
}  // namespace etl::plugins::postgres

ETL_PLUGIN_DESCRIPTOR(etl::plugins::postgres::kDescriptor);
