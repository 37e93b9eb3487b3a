// postgres-query: records from a PostgreSQL query, streamed row by row (libpq single-row mode:
// constant memory at any result size), with typed values from the column types. Optional
// acknowledgement statements mark rows by their outcome (a table as an outbox or a queue), and
// follow mode waits for new rows (LISTEN, with a poll interval as fallback) until stopped.

#include <poll.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "etl/sdk.hpp"
#include "postgres/named_parameters.hpp"
#include "postgres/connection.hpp"
#include "postgres/values.hpp"

namespace etl::plugins::postgres_query {
namespace {

using postgres::PgConn;
using postgres::PgResult;

struct Config : postgres::PgConnection {
  std::string query;
  std::map<std::string, std::string> params;
  std::string on_ok;
  std::string on_rejected;
  std::string on_failed;
  bool repeat = false;
  bool follow = false;
  std::string listen;
  double poll_interval = 5;
  std::string key;
  double timeout = 60;
};

/// An acknowledgement statement: its SQL with positions, and where each parameter comes from.
struct Ack {
  postgres::NamedStatement statement;
  std::string name;  // prepared statement name
};

class PostgresQuerySource final : public sdk::Source {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    postgres::declare_connection(map);
    map.key("query", &Config::query,
            "The query; named parameters ($since) take their values from params. Any statement that returns rows "
            "works, e.g. an UPDATE ... RETURNING that claims rows with FOR UPDATE SKIP LOCKED.")
        .required()
        .min_length(1);
    map.key("params", &Config::params, "Parameter name -> value, bound (e.g. \"since\": \"${WINDOW_START}\").");
    map.key("on_ok", &Config::on_ok,
            "Statement run for each record settled ok, with the record's fields as named parameters ($id), e.g. "
            "UPDATE outbox SET sent_at = now() WHERE id = $id. $_code and $_message hold the outcome's.");
    map.key("on_rejected", &Config::on_rejected, "Statement run for each record settled rejected.");
    map.key("on_failed", &Config::on_failed, "Statement run for each record settled failed.");
    map.key("repeat", &Config::repeat,
            "Run the query again as long as it returns rows (a claiming query that takes a batch at a time); the "
            "source ends when a run returns none.");
    map.key("follow", &Config::follow,
            "After the rows run out, wait for more (NOTIFY on listen, or every poll_interval) and run the query again, "
            "until stopped. The query must select only rows not yet done (e.g. WHERE sent_at IS NULL); needs key.");
    map.key("listen", &Config::listen, "follow: the channel to LISTEN on (empty: poll only).");
    map.key("poll_interval", &Config::poll_interval, "follow: seconds between runs of the query without a notification.")
        .exclusive_minimum(0);
    map.key("key", &Config::key,
            "A field that identifies a row: in follow mode, rows still in flight are not yielded again.");
    map.key("timeout", &Config::timeout, "Seconds without a byte from the server while a query runs before it is given up.")
        .exclusive_minimum(0);
    return map;
  }

  PostgresQuerySource(Config config, sdk::Context& context) : config_(std::move(config)), context_(context) {
    try {
      query_ = postgres::parse_named_parameters(config_.query);
    } catch (const std::invalid_argument& e) {
      throw sdk::ConfigError("/query", e.what());
    }
    for (const auto& name : query_.fields) {
      if (!config_.params.contains(name)) {
        throw sdk::ConfigError("/params", "the query uses $" + name + ", which params does not give");
      }
      values_.push_back(config_.params.at(name));
    }
    auto ack = [&](const std::string& text, const char* key, sdk::Status status) {
      if (text.empty()) return;
      try {
        acks_.emplace(status, Ack{postgres::parse_named_parameters(text), std::string("etl_ack_") + key});
      } catch (const std::invalid_argument& e) {
        throw sdk::ConfigError(std::string("/") + key, e.what());
      }
    };
    ack(config_.on_ok, "on_ok", sdk::Status::ok);
    ack(config_.on_rejected, "on_rejected", sdk::Status::rejected);
    ack(config_.on_failed, "on_failed", sdk::Status::failed);
    if (config_.follow && config_.key.empty()) {
      throw sdk::ConfigError("/key", "follow mode needs key: the field that tells rows apart");
    }
    conninfo_ = postgres::connection_string(postgres::connection_parameters(config_));
  }

  void open() override {
    reader_ = connect("the query");
    // Prepared and described first: the columns are the record's fields, known before any row.
    PgResult prepared(PQprepare(reader_.get(), "etl_query", query_.sql.c_str(), static_cast<int>(query_.fields.size()), nullptr));
    if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      throw sdk::PluginError("query: " + postgres::error_field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY));
    }
    PgResult described(PQdescribePrepared(reader_.get(), "etl_query"));
    for (int column = 0; column < PQnfields(described.get()); ++column) fields_.push_back(PQfname(described.get(), column));
    if (fields_.empty()) throw sdk::PluginError("query: it returns no columns (add RETURNING to a data-changing statement)");
    if (!acks_.empty() || (config_.follow && !config_.listen.empty())) {
      listener_ = connect("acknowledgements");
      for (auto& [status, ack] : acks_) {
        PgResult ack_prepared(PQprepare(listener_.get(), ack.name.c_str(), ack.statement.sql.c_str(),
                                        static_cast<int>(ack.statement.fields.size()), nullptr));
        if (PQresultStatus(ack_prepared.get()) != PGRES_COMMAND_OK) {
          throw sdk::PluginError(ack.name.substr(8) + ": " + postgres::error_field(ack_prepared.get(), PG_DIAG_MESSAGE_PRIMARY));
        }
      }
      if (config_.follow && !config_.listen.empty()) {
        std::unique_ptr<char, decltype(&PQfreemem)> channel(
            PQescapeIdentifier(listener_.get(), config_.listen.c_str(), config_.listen.size()), &PQfreemem);
        PgResult listening(PQexec(listener_.get(), ("LISTEN " + std::string(channel.get())).c_str()));
        if (PQresultStatus(listening.get()) != PGRES_COMMAND_OK) {
          throw sdk::PluginError("LISTEN " + config_.listen + ": " + postgres::one_line(PQerrorMessage(listener_.get())));
        }
      }
    }
    start_query();
  }

  [[nodiscard]] std::vector<std::string> fields() const override { return fields_; }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    while (batch.size() < max_records) {
      if (context_.stop_requested()) return false;
      if (!running_) {
        const bool came = rows_in_run_ != 0;
        if (came && (config_.repeat || config_.follow)) {
          start_query();  // more may be waiting right away
          continue;
        }
        if (!config_.follow) return false;
        if (!batch.empty()) return true;  // hand over what is here before waiting
        if (!wait_for_more()) return false;
        start_query();
        continue;
      }
      PgResult result = next_result();
      if (!result) {
        running_ = false;  // this run of the query is done
        continue;
      }
      const ExecStatusType status = PQresultStatus(result.get());
      if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) continue;  // the end of the rows
      if (status != PGRES_SINGLE_TUPLE) {
        const std::string message = postgres::error_field(result.get(), PG_DIAG_SQLSTATE) + ": " +
                                    postgres::error_field(result.get(), PG_DIAG_MESSAGE_PRIMARY);
        drain();
        throw sdk::PluginError("query: " + message);
      }
      sdk::Record record;
      postgres::set_fields_from_row(result.get(), 0, record);
      if (!yield(record)) continue;
      ++rows_in_run_;
      batch.push_back(std::move(record));
    }
    return true;
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    sdk::SourceStats stats;
    stats.received = yielded_;
    return stats;
  }

  [[nodiscard]] bool wants_acknowledgements() const override { return !acks_.empty() || !config_.key.empty(); }

  void acknowledge(std::uint64_t sequence, const sdk::Outcome& outcome) override {
    Pending pending;
    {
      std::lock_guard lock(mutex_);
      const auto found = pending_.find(sequence);
      if (found == pending_.end()) return;
      pending = std::move(found->second);
      pending_.erase(found);
    }
    const auto ack = acks_.find(outcome.status);
    if (ack != acks_.end()) run_ack(ack->second, pending, outcome);
    if (!config_.key.empty()) {
      // Not yielded again by the run of the query going on now: its snapshot may be older than
      // the acknowledgement that just committed, and it would still see the row as not done.
      std::lock_guard lock(mutex_);
      in_flight_.erase(pending.key);
      settled_since_run_.insert(pending.key);
    }
  }

 private:
  /// What an acknowledgement needs of a record it yielded: the fields its statements name, and its key.
  struct Pending {
    std::map<std::string, std::optional<std::string>> values;
    std::string key;
  };

  /// Keeps what the acknowledgements will need; false for a row still in flight from an
  /// earlier run of the query (follow mode), which is not yielded again.
  bool yield(sdk::Record& record) {
    Pending pending;
    if (!config_.key.empty()) pending.key = record.text(config_.key).value_or("");
    for (const auto& [status, ack] : acks_) {
      for (const auto& name : ack.statement.fields) {
        if (!name.starts_with("_")) pending.values[name] = record.text(name);
      }
    }
    std::lock_guard lock(mutex_);
    if (!config_.key.empty() && (settled_since_run_.count(pending.key) != 0 || !in_flight_.insert(pending.key).second)) {
      return false;
    }
    // The host numbers the records read() yields 1, 2, 3, ... in order (etl/sdk/plugin.hpp).
    ++yielded_;
    record.origin = "row " + std::to_string(yielded_);
    if (wants_acknowledgements()) pending_.emplace(yielded_, std::move(pending));
    return true;
  }

  PgConn connect(const char* purpose) {
    PgConn connection(PQconnectdb(conninfo_.c_str()));
    if (!connection || PQstatus(connection.get()) != CONNECTION_OK) {
      throw sdk::PluginError("cannot connect to PostgreSQL at " + postgres::describe(config_) + " (" + purpose +
                             "): " + (connection ? postgres::one_line(PQerrorMessage(connection.get())) : "out of memory"));
    }
    return connection;
  }

  void start_query() {
    {
      // Rows settled before this run's snapshot is taken: their acknowledgements have
      // committed, so this run sees them done (or, without a statement for their outcome, due
      // again).
      std::lock_guard lock(mutex_);
      settled_since_run_.clear();
    }
    std::vector<const char*> parameters;
    for (const auto& value : values_) parameters.push_back(value.c_str());
    if (PQsendQueryPrepared(reader_.get(), "etl_query", static_cast<int>(parameters.size()), parameters.data(), nullptr,
                            nullptr, 0) != 1 ||
        PQsetSingleRowMode(reader_.get()) != 1) {
      throw sdk::PluginError("query: " + postgres::one_line(PQerrorMessage(reader_.get())));
    }
    running_ = true;
    rows_in_run_ = 0;
  }

  /// The next result of the running query, waiting at most `timeout` between bytes; on a stop
  /// the query is cancelled and nullptr returned.
  PgResult next_result() {
    using Clock = std::chrono::steady_clock;
    auto last_byte = Clock::now();
    while (PQisBusy(reader_.get())) {
      if (context_.stop_requested()) {
        cancel();
        return nullptr;
      }
      if (Clock::now() - last_byte > std::chrono::duration<double>(config_.timeout)) {
        throw sdk::PluginError("query: no answer from " + postgres::describe(config_) + " for " +
                               sdk::Value::real_text(config_.timeout) + " s (timeout)");
      }
      pollfd readable{PQsocket(reader_.get()), POLLIN, 0};
      if (poll(&readable, 1, 100) > 0) {
        if (PQconsumeInput(reader_.get()) != 1) {
          throw sdk::PluginError("query: " + postgres::one_line(PQerrorMessage(reader_.get())));
        }
        last_byte = Clock::now();
      }
    }
    return PgResult(PQgetResult(reader_.get()));
  }

  void cancel() {
    if (PGcancel* handle = PQgetCancel(reader_.get())) {
      char error[256];
      PQcancel(handle, error, sizeof error);
      PQfreeCancel(handle);
    }
    reader_.reset();  // the rest of the result is not wanted; the host is stopping
    running_ = false;
  }

  /// Reads what is left of a failed query's results, so the connection can be used again.
  void drain() {
    while (PgResult rest{PQgetResult(reader_.get())}) {
    }
    running_ = false;
  }

  /// Follow mode: waits for a notification on the listen channel, the poll interval, or a stop.
  /// False on a stop.
  bool wait_for_more() {
    using Clock = std::chrono::steady_clock;
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config_.poll_interval));
    while (Clock::now() < until) {
      if (context_.stop_requested()) return false;
      if (!listener_ || config_.listen.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      {
        std::lock_guard lock(listener_mutex_);
        PQconsumeInput(listener_.get());
        bool notified = false;
        while (PGnotify* notify = PQnotifies(listener_.get())) {
          notified = true;
          PQfreemem(notify);
        }
        if (notified) return true;
      }
      pollfd readable{PQsocket(listener_.get()), POLLIN, 0};
      poll(&readable, 1, 50);
    }
    return true;
  }

  /// Runs an acknowledgement statement with the record's values ($_code, $_message: the outcome's).
  void run_ack(const Ack& ack, const Pending& pending, const sdk::Outcome& outcome) {
    std::vector<std::optional<std::string>> values;
    for (const auto& name : ack.statement.fields) {
      if (name == "_code") {
        values.emplace_back(outcome.code);
      } else if (name == "_message") {
        values.emplace_back(outcome.message);
      } else {
        const auto found = pending.values.find(name);
        values.push_back(found != pending.values.end() ? found->second : std::nullopt);
      }
    }
    std::vector<const char*> parameters;
    for (const auto& value : values) parameters.push_back(value ? value->c_str() : nullptr);
    std::lock_guard lock(listener_mutex_);
    PgResult result(PQexecPrepared(listener_.get(), ack.name.c_str(), static_cast<int>(parameters.size()),
                                   parameters.data(), nullptr, nullptr, 0));
    const ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      // The host stops the run: a row done but not marked would be sent again by the next run.
      throw sdk::PluginError(ack.name.substr(8) + ": " + postgres::error_field(result.get(), PG_DIAG_SQLSTATE) + ": " +
                             postgres::error_field(result.get(), PG_DIAG_MESSAGE_PRIMARY));
    }
  }

  Config config_;
  sdk::Context& context_;
  postgres::NamedStatement query_;
  std::vector<std::string> values_;
  std::map<sdk::Status, Ack> acks_;
  std::string conninfo_;
  PgConn reader_;
  PgConn listener_;            // acknowledgements and LISTEN
  std::mutex listener_mutex_;  // the reporter thread acknowledges while read() may wait on it
  bool running_ = false;
  std::uint64_t rows_in_run_ = 0;  // yielded by the current run of the query
  std::vector<std::string> fields_;
  std::mutex mutex_;  // pending_, in_flight_, settled_since_run_, yielded_
  std::uint64_t yielded_ = 0;
  std::map<std::uint64_t, Pending> pending_;
  std::set<std::string> in_flight_;
  std::set<std::string> settled_since_run_;  // keys settled after the current run of the query began
};

}  // namespace
}  // namespace etl::plugins::postgres_query

ETL_PLUGIN(etl::plugins::postgres_query::PostgresQuerySource, "postgres-query", "1.0.0",
           "Records from a PostgreSQL query, streamed; acknowledgement statements per outcome; follow mode");
