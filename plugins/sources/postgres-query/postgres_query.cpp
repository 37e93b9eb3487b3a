// postgres-query: records from a PostgreSQL query, streamed row by row (libpq single-row mode:
// constant memory at any result size), with typed values from the column types. Optional
// acknowledgement statements mark rows by their outcome (a table as an outbox or a queue), and
// follow mode waits for new rows (LISTEN, with a poll interval as fallback) until stopped.
//
// A lost connection (a restart, a failover, the network) is reconnected under the retry policy:
// in follow mode (a service) for as long as it runs, otherwise within retry.attempts. LISTEN is
// issued again, the query run again (it says what is still to do; rows in flight are not
// yielded twice), and acknowledgements that could not run are run after the reconnect, in
// order, so a row the sink settled is marked, never left to be sent again without need. A row
// settled but never marked ends the run with an error, never exit 0.

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "postgres/connection.hpp"
#include "postgres/error_kind.hpp"
#include "postgres/named_parameters.hpp"
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
  std::vector<std::string> cursor;
  double timeout = 60;
  sdk::RetryPolicy retry;
};

/// The connection is gone (or cannot be had now): worth reconnecting.
class ConnectionLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An acknowledgement statement: its SQL with positions, and where each parameter comes from.
struct Ack {
  postgres::NamedStatement statement;
  std::string name;  // prepared statement name
  std::string key;   // on_ok, on_rejected, on_failed
  std::string text;  // as configured, for messages
};

/// What an acknowledgement needs of a record it yielded: the fields its statements name, and its key.
struct Pending {
  std::map<std::string, std::optional<std::string>> values;
  std::string key;
};

/// An acknowledgement that could not run yet (the connection was lost): run after the reconnect.
struct Unacked {
  Pending pending;
  sdk::Status status;
  std::string code;
  std::string message;
};

bool lost(PGconn* connection, const PGresult* result) {
  if (connection == nullptr || PQstatus(connection) == CONNECTION_BAD) return true;
  if (result == nullptr) return true;
  return postgres::classify_sqlstate(postgres::error_field(result, PG_DIAG_SQLSTATE)) == postgres::ErrorKind::connection;
}

class PostgresQuerySource final : public sdk::Source, public sdk::LongRunning, public sdk::Resumable {
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
            "until stopped (the pipeline is then a service: a lost database is waited for). The query must select only "
            "rows not yet done (e.g. WHERE sent_at IS NULL); needs key.");
    map.key("listen", &Config::listen, "follow: the channel to LISTEN on (empty: poll only).");
    map.key("poll_interval", &Config::poll_interval, "follow: seconds between runs of the query without a notification.")
        .exclusive_minimum(0);
    map.key("key", &Config::key,
            "A field that identifies a row: in follow mode, rows still in flight (or settled and not yet marked) are "
            "not yielded again.");
    map.key("cursor", &Config::cursor,
            "Incremental mode: result columns (NOT NULL, the query ordered by them) whose values in the last row read "
            "are bound to the query's parameters of the same names at its next run, e.g. [\"updated_at\", \"id\"] "
            "with WHERE (updated_at, id) > ($updated_at, $id) ORDER BY updated_at, id; params gives their first "
            "values. With settings.state the position is those values of the last settled row, so the next run of "
            "the pipeline goes on after it.");
    map.key("timeout", &Config::timeout, "Seconds without a byte from the server while a query runs before it is given up.")
        .exclusive_minimum(0);
    sdk::RetryPolicy::declare(map, &Config::retry,
                              "Reconnects after a lost connection or server restart: in follow mode without bound (every "
                              "2 s at most, unless max_outage), otherwise retry.attempts failures in a row.");
    return map;
  }

  PostgresQuerySource(Config config, sdk::Context& context)
      : config_(std::move(config)), context_(context), backoff_(config_.retry, config_.follow) {
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
        acks_.emplace(status, Ack{postgres::parse_named_parameters(text), std::string("etl_ack_") + key, key, text});
      } catch (const std::invalid_argument& e) {
        throw sdk::ConfigError(std::string("/") + key, e.what());
      }
    };
    ack(config_.on_ok, "on_ok", sdk::Status::ok);
    ack(config_.on_rejected, "on_rejected", sdk::Status::rejected);
    ack(config_.on_failed, "on_failed", sdk::Status::failed);
    if (config_.follow && config_.key.empty() && config_.cursor.empty()) {
      throw sdk::ConfigError("/key", "follow mode needs key (the field that tells rows apart) or cursor");
    }
    for (std::size_t i = 0; i < config_.cursor.size(); ++i) {
      const auto& name = config_.cursor[i];
      const auto at = std::find(query_.fields.begin(), query_.fields.end(), name);
      if (at == query_.fields.end()) {
        throw sdk::ConfigError("/cursor/" + std::to_string(i), "the query has no parameter $" + name +
                                                                   " for the cursor's value (e.g. WHERE " + name + " > $" + name + ")");
      }
      cursor_parameters_.push_back(static_cast<std::size_t>(at - query_.fields.begin()));
    }
    if (config_.follow && !config_.listen.empty() && !config_.prepared_statements) {
      throw sdk::ConfigError("/listen", "LISTEN needs a session of its own, which a transaction pooler does not keep: "
                                        "poll only (listen: \"\"), or connect to the server directly");
    }
    if (config_.follow) backoff_ = sdk::Backoff(capped(config_.retry), true);
    conninfo_ = postgres::connection_string(postgres::connection_parameters(config_));
  }

  [[nodiscard]] bool runs_until_stopped() const override { return config_.follow; }

  void open() override {
    // The first connection shows a configuration that can never work (a wrong password, a
    // query the server refuses) at once, in a service too.
    while (true) {
      try {
        connect_all();
        break;
      } catch (const ConnectionLost& e) {
        if (!wait_to_reconnect(e.what())) throw sdk::PluginError(std::string(e.what()) + " (" + backoff_.spent_text() + ")");
      }
    }
  }

  [[nodiscard]] std::vector<std::string> fields() const override { return fields_; }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    const bool more = read_some(batch, max_records);
    // From here acknowledgements that cannot run get a last try and then end the run with an
    // error: no one would run them later.
    if (!more) reading_ended_ = true;
    return more;
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    sdk::SourceStats stats;
    stats.received = yielded_;
    return stats;
  }

  void resume_from(std::string_view position) override {
    if (config_.cursor.empty()) {
      throw sdk::PluginError("settings.state needs cursor: the columns whose last values say where the query goes on");
    }
    if (position.empty()) return;
    const auto document = nlohmann::json::parse(position, nullptr, false);
    for (std::size_t i = 0; i < config_.cursor.size(); ++i) {
      const auto value = document.is_object() ? document.find(config_.cursor[i]) : document.end();
      if (value == document.end() || !value->is_string()) {
        throw sdk::PluginError("the committed position " + std::string(position) + " has no value for cursor column \"" +
                               config_.cursor[i] + "\" (the cursor changed?): `etl-host state reset PIPELINE` to start over");
      }
      values_[cursor_parameters_[i]] = value->get<std::string>();
    }
    cursor_moved_ = true;
    context_.log(sdk::LogLevel::info, "resuming after cursor " + std::string(position));
  }

  [[nodiscard]] std::string position() const override {
    if (!cursor_moved_) return {};
    nlohmann::json position = nlohmann::json::object();
    for (std::size_t i = 0; i < config_.cursor.size(); ++i) position[config_.cursor[i]] = values_[cursor_parameters_[i]];
    return position.dump();
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
    if (ack != acks_.end()) {
      Unacked unacked{std::move(pending), outcome.status, outcome.code, outcome.message};
      std::unique_lock lock(listener_mutex_);
      if (unacked_.empty() && run_ack(ack->second, unacked)) {
        lock.unlock();
        settled(unacked.pending.key);
        return;
      }
      // The connection is lost: run after the reconnect, in order. The row stays "in flight",
      // so that the query run again meanwhile does not yield it a second time.
      unacked_.push_back(std::move(unacked));
      if (!reading_ended_ && !context_.stop_requested()) return;
      // The run is ending: a last, bounded try before the row is reported unmarked.
      lock.unlock();
      last_tries();
      return;
    }
    settled(pending.key);
  }

 private:
  bool read_some(sdk::Batch& batch, std::size_t max_records) {
    while (batch.size() < max_records) {
      if (context_.stop_requested()) return false;
      try {
        if (!reader_) {
          connect_all();
          continue;
        }
        flush_unacked();
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
          if (lost(reader_.get(), result.get())) throw ConnectionLost("query: " + postgres::result_error(result.get(), reader_.get()));
          const std::string message = postgres::result_error(result.get(), reader_.get());
          drain();
          throw sdk::PluginError("query: " + message);
        }
        sdk::Record record;
        postgres::set_fields_from_row(result.get(), 0, record);
        if (!yield(record)) continue;
        advance_cursor(result.get());
        ++rows_in_run_;
        backoff_.succeeded();
        batch.push_back(std::move(record));
      } catch (const ConnectionLost& e) {
        drop_connections();
        // A query run once cannot be resumed (what of it was read is not the query's to say);
        // one that is run again (follow, repeat) says by itself what is still to do.
        // With a cursor it can: the next run starts after the last row read.
        if (!config_.follow && !config_.repeat && config_.cursor.empty()) throw sdk::PluginError(e.what());
        if (!batch.empty()) return true;  // what came is handed over before waiting
        if (!wait_to_reconnect(e.what())) {
          if (context_.stop_requested()) return false;
          throw sdk::PluginError(std::string(e.what()) + " (database unreachable " + backoff_.spent_text() + ")");
        }
      }
    }
    return true;
  }

  /// The cursor's parameters take the values of the row just yielded (the server's text: no
  /// precision lost to a conversion), for the next run of the query and for position().
  void advance_cursor(const PGresult* row) {
    for (std::size_t i = 0; i < config_.cursor.size(); ++i) {
      const int column = PQfnumber(row, ("\"" + config_.cursor[i] + "\"").c_str());
      if (column < 0) throw sdk::PluginError("query: the cursor column \"" + config_.cursor[i] + "\" is not in its result");
      if (PQgetisnull(row, 0, column)) {
        throw sdk::PluginError("query: the cursor column \"" + config_.cursor[i] + "\" is null in row " +
                               std::to_string(yielded_) + ": a cursor's columns must be NOT NULL");
      }
      values_[cursor_parameters_[i]].assign(PQgetvalue(row, 0, column), static_cast<std::size_t>(PQgetlength(row, 0, column)));
    }
    cursor_moved_ = !config_.cursor.empty();
  }

  /// Waits in a service are capped at 2 s: a server that is back is noticed within seconds.
  static sdk::RetryPolicy capped(sdk::RetryPolicy policy) {
    policy.max_delay = std::min(policy.max_delay, 2.0);
    return policy;
  }

  void settled(const std::string& key) {
    if (config_.key.empty()) return;
    // Not yielded again by the run of the query going on now: its snapshot may be older than
    // the acknowledgement that just committed, and it would still see the row as not done.
    std::lock_guard lock(mutex_);
    in_flight_.erase(key);
    settled_since_run_.insert(key);
  }

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
      const std::string reason = connection ? postgres::one_line(PQerrorMessage(connection.get())) : "out of memory";
      const std::string message = "cannot connect to PostgreSQL at " + postgres::describe(config_) + " (" + purpose + "): " + reason;
      if (postgres::is_permanent_connect_failure(reason)) throw sdk::PluginError(message);
      throw ConnectionLost(message);
    }
    return connection;
  }

  /// Connects the reader (the query prepared and described: its columns are the record's
  /// fields) and, for acknowledgements and LISTEN, the listener.
  void connect_all() {
    PgConn reader = connect("the query");
    PgResult prepared(PQprepare(reader.get(), "etl_query", query_.sql.c_str(), static_cast<int>(query_.fields.size()), nullptr));
    if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      if (lost(reader.get(), prepared.get())) throw ConnectionLost("query: " + postgres::result_error(prepared.get(), reader.get()));
      throw sdk::PluginError("query: " + postgres::result_error(prepared.get(), reader.get()));
    }
    std::vector<std::string> fields;
    PgResult described(PQdescribePrepared(reader.get(), "etl_query"));
    if (PQresultStatus(described.get()) != PGRES_COMMAND_OK) {
      throw ConnectionLost("query: " + postgres::result_error(described.get(), reader.get()));
    }
    for (int column = 0; column < PQnfields(described.get()); ++column) fields.emplace_back(PQfname(described.get(), column));
    if (fields.empty()) throw sdk::PluginError("query: it returns no columns (add RETURNING to a data-changing statement)");
    if (!fields_.empty() && fields != fields_) {
      throw sdk::PluginError("query: its columns changed since the run began (a table altered meanwhile); restart the run");
    }
    PgConn listener;
    if (!acks_.empty() || (config_.follow && !config_.listen.empty())) {
      listener = connect("acknowledgements");
      for (auto& [status, ack] : acks_) {
        PgResult ack_prepared(PQprepare(listener.get(), ack.name.c_str(), ack.statement.sql.c_str(),
                                        static_cast<int>(ack.statement.fields.size()), nullptr));
        if (PQresultStatus(ack_prepared.get()) != PGRES_COMMAND_OK) {
          if (lost(listener.get(), ack_prepared.get())) throw ConnectionLost(ack.key + ": " + postgres::result_error(ack_prepared.get(), listener.get()));
          throw sdk::PluginError(ack.key + " (" + ack.text + "): " + postgres::result_error(ack_prepared.get(), listener.get()));
        }
      }
      if (config_.follow && !config_.listen.empty()) {
        std::unique_ptr<char, decltype(&PQfreemem)> channel(
            PQescapeIdentifier(listener.get(), config_.listen.c_str(), config_.listen.size()), &PQfreemem);
        PgResult listening(PQexec(listener.get(), ("LISTEN " + std::string(channel.get())).c_str()));
        if (PQresultStatus(listening.get()) != PGRES_COMMAND_OK) {
          if (lost(listener.get(), listening.get())) throw ConnectionLost("LISTEN " + config_.listen + ": " + postgres::result_error(listening.get(), listener.get()));
          throw sdk::PluginError("LISTEN " + config_.listen + ": " + postgres::result_error(listening.get(), listener.get()));
        }
      }
    }
    fields_ = std::move(fields);
    reader_ = std::move(reader);
    {
      std::lock_guard lock(listener_mutex_);
      listener_ = std::move(listener);
    }
    running_ = false;
    rows_in_run_ = 0;
    if (outage_) {
      outage_ = false;
      context_.log(sdk::LogLevel::info, "connected to PostgreSQL at " + postgres::describe(config_) + " again; LISTEN and the "
                                            "query run again, " + std::to_string(unacked_count()) + " acknowledgement(s) to run");
      if (auto* service = sdk::service_of(context_)) service->set_ready(true, "");
    }
    flush_unacked();
    // The first run of the query, or the run after a reconnect: it says what is still to do.
    start_query();
  }

  void drop_connections() {
    cancel();
    std::lock_guard lock(listener_mutex_);
    listener_.reset();
  }

  /// After a lost connection: the wait before the next try, logged once per outage; false when
  /// the budget is spent (a batch run) or the run stopped.
  bool wait_to_reconnect(const std::string& reason) {
    const auto delay = backoff_.failed();
    if (!delay || context_.stop_requested()) return false;
    if (!outage_) {
      outage_ = true;
      context_.log(sdk::LogLevel::warning, reason + "; reconnecting (" + backoff_.progress_text() + ")");
      if (auto* service = sdk::service_of(context_)) service->set_ready(false, reason);
    }
    return sdk::sleep_unless_stopped(context_, *delay);
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
      throw ConnectionLost("query: " + postgres::one_line(PQerrorMessage(reader_.get())));
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
        throw ConnectionLost("query: no answer from " + postgres::describe(config_) + " for " +
                             sdk::Value::real_text(config_.timeout) + " s (timeout)");
      }
      pollfd readable{PQsocket(reader_.get()), POLLIN, 0};
      if (poll(&readable, 1, 100) > 0) {
        if (PQconsumeInput(reader_.get()) != 1) throw ConnectionLost("query: " + postgres::one_line(PQerrorMessage(reader_.get())));
        last_byte = Clock::now();
      }
    }
    return PgResult(PQgetResult(reader_.get()));
  }

  void cancel() {
    if (reader_ && running_) {
      if (PGcancel* handle = PQgetCancel(reader_.get())) {
        char error[256];
        PQcancel(handle, error, sizeof error);
        PQfreeCancel(handle);
      }
    }
    reader_.reset();  // the rest of the result is not wanted
    running_ = false;
  }

  /// Reads what is left of a failed query's results, so the connection can be used again.
  void drain() {
    while (PgResult rest{PQgetResult(reader_.get())}) {
    }
    running_ = false;
  }

  /// Follow mode: waits for a notification on the listen channel, the poll interval, or a stop.
  /// False on a stop; throws ConnectionLost when the listener's server went away.
  bool wait_for_more() {
    using Clock = std::chrono::steady_clock;
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config_.poll_interval));
    while (Clock::now() < until) {
      if (context_.stop_requested()) return false;
      bool listening = false;
      int socket = -1;
      {
        std::lock_guard lock(listener_mutex_);
        if (listener_ && !config_.listen.empty()) {
          listening = true;
          if (PQconsumeInput(listener_.get()) != 1 || PQstatus(listener_.get()) != CONNECTION_OK) {
            throw ConnectionLost("LISTEN " + config_.listen + ": " + postgres::one_line(PQerrorMessage(listener_.get())));
          }
          bool notified = false;
          while (PGnotify* notify = PQnotifies(listener_.get())) {
            notified = true;
            PQfreemem(notify);
          }
          if (notified) return true;
          socket = PQsocket(listener_.get());
        }
      }
      // The reader is idle meanwhile: a server that ended it says so on its socket.
      if (reader_ && !reader_alive()) throw ConnectionLost("query: the server ended the session (" + postgres::one_line(PQerrorMessage(reader_.get())) + ")");
      if (!listening) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      pollfd readable{socket, POLLIN, 0};
      poll(&readable, 1, 50);
    }
    return true;
  }

  /// Whether the idle reader's session is still open (nothing said on its socket, or only a
  /// harmless notice).
  bool reader_alive() {
    pollfd readable{PQsocket(reader_.get()), POLLIN, 0};
    if (poll(&readable, 1, 0) <= 0) return true;
    return PQconsumeInput(reader_.get()) == 1 && PQstatus(reader_.get()) == CONNECTION_OK &&
           (readable.revents & (POLLHUP | POLLERR)) == 0;
  }

  /// Runs an acknowledgement on the listener (listener_mutex_ held): true when done, false when
  /// the connection is lost (it is then dropped). A statement the server refuses for another
  /// reason throws, naming the statement and the SQLSTATE.
  bool run_ack(const Ack& ack, const Unacked& unacked) {
    if (!listener_) return false;
    std::vector<std::optional<std::string>> values;
    for (const auto& name : ack.statement.fields) {
      if (name == "_code") {
        values.emplace_back(unacked.code);
      } else if (name == "_message") {
        values.emplace_back(unacked.message);
      } else {
        const auto found = unacked.pending.values.find(name);
        values.push_back(found != unacked.pending.values.end() ? found->second : std::nullopt);
      }
    }
    std::vector<const char*> parameters;
    for (const auto& value : values) parameters.push_back(value ? value->c_str() : nullptr);
    PgResult result(PQexecPrepared(listener_.get(), ack.name.c_str(), static_cast<int>(parameters.size()), parameters.data(),
                                   nullptr, nullptr, 0));
    const ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return true;
    if (lost(listener_.get(), result.get())) {
      listener_.reset();
      return false;
    }
    throw sdk::PluginError(ack.key + " (" + ack.text + "): " + postgres::result_error(result.get(), listener_.get()));
  }

  /// Runs the acknowledgements that waited for a connection, in order (listener_mutex_ taken).
  void flush_unacked() {
    std::deque<std::string> done;
    {
      std::lock_guard lock(listener_mutex_);
      while (!unacked_.empty() && listener_) {
        Unacked& first = unacked_.front();
        if (!run_ack(acks_.at(first.status), first)) break;
        done.push_back(first.pending.key);
        unacked_.pop_front();
      }
    }
    for (const auto& key : done) settled(key);
  }

  std::size_t unacked_count() {
    std::lock_guard lock(listener_mutex_);
    return unacked_.size();
  }

  /// The run is ending with acknowledgements that could not run: a reconnect or two within the
  /// drain, then an error naming how many rows are settled and not marked (the run's exit code
  /// says so; they are sent again by the next run).
  void last_tries() {
    const auto* service = sdk::service_of(context_);
    const double budget = service != nullptr ? std::max(1.0, service->drain_seconds_left()) : 5.0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(budget);
    std::string reason = "the connection is lost";
    while (std::chrono::steady_clock::now() < until) {
      try {
        PgConn listener = connect("acknowledgements");
        for (auto& [status, ack] : acks_) {
          PgResult prepared(PQprepare(listener.get(), ack.name.c_str(), ack.statement.sql.c_str(),
                                      static_cast<int>(ack.statement.fields.size()), nullptr));
          if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) throw ConnectionLost(postgres::result_error(prepared.get(), listener.get()));
        }
        {
          std::lock_guard lock(listener_mutex_);
          listener_ = std::move(listener);
        }
        flush_unacked();
        if (unacked_count() == 0) return;
      } catch (const std::exception& e) {
        reason = e.what();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    const std::size_t left = unacked_count();
    throw sdk::PluginError(std::to_string(left) + " row(s) settled but not marked (" + reason +
                           "): the acknowledgement statements could not run; the next run takes them again");
  }

  Config config_;
  sdk::Context& context_;
  sdk::Backoff backoff_;
  bool outage_ = false;
  postgres::NamedStatement query_;
  std::vector<std::string> values_;  // the query's parameters; the cursor's are moved on by each row
  std::vector<std::size_t> cursor_parameters_;  // of each cursor column, its parameter in values_
  bool cursor_moved_ = false;  // values_ hold a row's cursor (or a resumed one), not only params
  std::map<sdk::Status, Ack> acks_;
  std::string conninfo_;
  PgConn reader_;
  PgConn listener_;            // acknowledgements and LISTEN
  std::mutex listener_mutex_;  // listener_, unacked_: the reporter thread acknowledges while read() may wait on it
  std::deque<Unacked> unacked_;
  bool running_ = false;
  std::uint64_t rows_in_run_ = 0;  // yielded by the current run of the query
  std::vector<std::string> fields_;
  std::mutex mutex_;  // pending_, in_flight_, settled_since_run_, yielded_
  std::uint64_t yielded_ = 0;
  std::map<std::uint64_t, Pending> pending_;
  std::set<std::string> in_flight_;
  std::set<std::string> settled_since_run_;  // keys settled after the current run of the query began
  std::atomic<bool> reading_ended_{false};
};

}  // namespace
}  // namespace etl::plugins::postgres_query

ETL_PLUGIN(etl::plugins::postgres_query::PostgresQuerySource, "postgres-query", "2.0.0",
           "Records from a PostgreSQL query, streamed; acknowledgement statements per outcome; follow mode");
