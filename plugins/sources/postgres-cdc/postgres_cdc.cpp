// postgres-cdc: change data capture from PostgreSQL's logical replication. A replication slot
// (pgoutput) streams every insert, update, delete and truncate of a publication's tables; each
// becomes a record (change_records.hpp). The slot's confirmed position advances only behind
// what the host committed (settings.state): a transaction is confirmed when every change of it
// and before it has its final outcome, so the server keeps exactly the WAL still in flight.
// A lost connection or a server restart is waited out (a service: without bound) and streaming
// resumes after the last transaction handed over; what was not confirmed comes again.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

#include "change_records.hpp"
#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "pgoutput.hpp"
#include "postgres/connection.hpp"
#include "postgres/error_kind.hpp"
#include "postgres/sql_text.hpp"
#include "replication_stream.hpp"

namespace etl::plugins::postgres_cdc {
namespace {

using Clock = std::chrono::steady_clock;

struct Config : postgres::PgConnection {
  std::string slot;
  std::string publication;
  std::vector<std::string> tables;
  bool create_publication = false;
  int proto_version = 1;
  double status_interval = 10;
  std::string end = "never";
  std::string snapshot = "never";
  std::uint64_t max_queue = 16384;
  sdk::RetryPolicy retry;
};

/// What the replication thread hands read(): a record, or the end of a transaction.
struct Item {
  std::optional<sdk::Record> record;
  std::uint64_t commit_end = 0;  // a transaction's end: its changes are all before this item
};

using postgres::quote_identifier;

/// "schema.table" or "table" as SQL, each part quoted.
std::string quote_table(const std::string& table) {
  const auto dot = table.find('.');
  if (dot == std::string::npos) return quote_identifier(table);
  return quote_identifier(table.substr(0, dot)) + "." + quote_identifier(table.substr(dot + 1));
}

class PostgresCdcSource final : public sdk::Source,
                                public sdk::Resumable,
                                public sdk::DescribesPosition,
                                public sdk::LongRunning {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    postgres::declare_connection(map);
    map.key("slot", &Config::slot,
            "The replication slot (pgoutput), created on the first run. It keeps the server's WAL from the last "
            "position confirmed: drop it (SELECT pg_drop_replication_slot('NAME')) when the pipeline is retired.")
        .required()
        .min_length(1)
        .max_length(63);
    map.key("publication", &Config::publication, "The publication whose tables are captured.").required().min_length(1).max_length(63);
    map.key("tables", &Config::tables,
            "Tables (schema.table or table) for create_publication; with an existing publication, each must be in it.");
    map.key("create_publication", &Config::create_publication,
            "Create the publication FOR TABLE tables when it does not exist (the user must own the tables).");
    map.key("proto_version", &Config::proto_version, "pgoutput protocol version (transactions are never streamed in progress).")
        .minimum(1)
        .maximum(2);
    map.key("status_interval", &Config::status_interval,
            "Seconds between standby status updates (the confirmed position) when nothing else makes one due; the "
            "server's wal_sender_timeout must be longer.")
        .minimum(0.1);
    map.key("end", &Config::end,
            "never: stream until stopped (the pipeline is a service); caught_up: end once every change committed before "
            "the run started is handed over (a catch-up run on a schedule, a benchmark).")
        .one_of({"never", "caught_up"});
    map.key("snapshot", &Config::snapshot,
            "initial: on the first run (no position committed), the slot is created with an exported snapshot and the "
            "published tables are read in it as _op \"read\" records, then the changes after it stream — none missed, "
            "none doubled. never: only changes from the slot's creation on.")
        .one_of({"never", "initial"});
    map.key("max_queue", &Config::max_queue, "Changes decoded ahead of the pipeline at most; the stream waits beyond.")
        .minimum(64);
    sdk::RetryPolicy::declare(map, &Config::retry,
                              "Reconnects after a lost connection or a server restart: in a service (end: never) without "
                              "bound (retry.max_outage when set), otherwise retry.attempts failures in a row.");
    return map;
  }

  PostgresCdcSource(Config config, sdk::Context& context)
      : config_(std::move(config)), context_(context), backoff_(capped(config_.retry), config_.end == "never") {
    if (config_.create_publication && config_.tables.empty()) {
      throw sdk::ConfigError("/tables", "create_publication needs the tables to publish");
    }
    for (std::size_t i = 0; i < config_.tables.size(); ++i) {
      if (config_.tables[i].empty() || std::count(config_.tables[i].begin(), config_.tables[i].end(), '.') > 1) {
        throw sdk::ConfigError("/tables/" + std::to_string(i), "\"" + config_.tables[i] + "\" is not table or schema.table");
      }
    }
    conninfo_ = postgres::connection_string(postgres::connection_parameters(config_));
    where_ = postgres::describe(config_);
  }

  ~PostgresCdcSource() override {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  [[nodiscard]] bool runs_until_stopped() const override { return config_.end == "never"; }

  void resume_from(std::string_view position) override {
    state_configured_ = true;
    if (position.empty()) return;
    const auto document = nlohmann::json::parse(position, nullptr, false);
    std::optional<std::uint64_t> lsn;
    if (document.is_object() && document.contains("lsn") && document.at("lsn").is_string()) {
      lsn = parse_lsn(document.at("lsn").get<std::string>());
    }
    if (!lsn) {
      throw sdk::PluginError("the committed position " + std::string(position) +
                             " is not one postgres-cdc wrote; `etl-host state reset PIPELINE` to start over");
    }
    resumed_ = *lsn;
    resumed_text_ = std::string(position);
  }

  /// `etl-host state show`: the slot against the server's WAL end, and the committed position's lag.
  std::string describe_position(std::string_view position) override {
    nlohmann::json facts = {{"slot", config_.slot}};
    std::string committed_lsn;
    if (const auto document = nlohmann::json::parse(position, nullptr, false);
        document.is_object() && document.contains("lsn") && document.at("lsn").is_string()) {
      committed_lsn = document.at("lsn").get<std::string>();
    }
    try {
      postgres::PgConn sql = plain_connection();
      const char* values[] = {config_.slot.c_str(), committed_lsn.empty() ? nullptr : committed_lsn.c_str()};
      postgres::PgResult result(PQexecParams(
          sql.get(),
          "SELECT pg_current_wal_lsn()::text, s.confirmed_flush_lsn::text, "
          "pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint, s.active, "
          "pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint, "
          "pg_wal_lsn_diff(pg_current_wal_lsn(), $2::pg_lsn)::bigint "
          "FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = $1",
          2, nullptr, values, nullptr, nullptr, 0));
      if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
        throw sdk::PluginError("PostgreSQL at " + where_ + ": " + postgres::result_error(result.get(), sql.get()));
      }
      const auto text = [&](int column) { return std::string(PQgetvalue(result.get(), 0, column)); };
      const auto number = [&](int column) -> nlohmann::json {
        if (PQgetisnull(result.get(), 0, column)) return nullptr;
        return std::stoll(text(column));
      };
      facts["server_lsn"] = text(0);
      if (PQgetisnull(result.get(), 0, 1)) {
        facts["slot_exists"] = false;  // created by the first run
      } else {
        facts["confirmed_lsn"] = text(1);
        facts["lag_bytes"] = number(2);  // WAL the slot has not confirmed: what a consumer still owes
        facts["slot_active"] = text(3) == "t";
        facts["retained_bytes"] = number(4);  // WAL the server keeps for the slot
      }
      if (!committed_lsn.empty()) facts["committed_lag_bytes"] = number(5);
    } catch (const ReplicationError& e) {
      throw sdk::PluginError(e.what());
    }
    return facts.dump();
  }

  void open() override {
    if (!state_configured_) {
      throw sdk::PluginError(
          "postgres-cdc confirms the slot's position only behind positions the host commits: give the pipeline "
          "settings.state (e.g. \"state\": {\"store\": \"file\", \"path\": \"state\"}), or the slot would keep all WAL");
    }
    for (;;) {
      try {
        prepare();
        break;
      } catch (const ReplicationError& e) {
        if (!e.transient() || !wait_to_reconnect(e.what())) {
          throw sdk::PluginError(std::string(e.what()) + (e.transient() ? " (" + backoff_.spent_text() + ")" : ""));
        }
      }
    }
    context_.log(sdk::LogLevel::info, "capturing publication \"" + config_.publication + "\" (" +
                                          std::to_string(tables_.size()) + " table(s)) through slot \"" + config_.slot +
                                          "\" at " + where_ + ", from " + lsn_text(std::max(resumed_, slot_confirmed_)) +
                                          (config_.end == "caught_up" ? ", until " + lsn_text(end_target_) : ""));
    stream_from_ = resumed_;
    thread_ = std::thread([this] { stream(); });
  }

  [[nodiscard]] std::vector<std::string> fields() const override { return fields_; }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    std::unique_lock lock(mutex_);
    // A transaction's end carries no record: taken as soon as it is at the front (on a stop
    // too), so that the position is as far as what was handed over.
    const auto take_ends = [&] {
      while (!queue_.empty() && !queue_.front().record) {
        yielded_commit_ = queue_.front().commit_end;
        queue_.pop_front();
        changed_.notify_all();
      }
    };
    const std::uint64_t position_at_read = yielded_commit_;
    while (batch.size() < max_records) {
      take_ends();
      if (context_.stop_requested()) return false;
      if (queue_.empty()) {
        if (done_) {
          if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
          return false;
        }
        // Hand over what is here, or a position that moved without records (a transaction of
        // other tables' changes only, a snapshot's end), before waiting.
        if (!batch.empty() || yielded_commit_ != position_at_read) return true;
        changed_.wait_for(lock, std::chrono::milliseconds(100));
        continue;
      }
      Item& item = queue_.front();
      if (item.record) {
        batch.push_back(std::move(*item.record));
        ++received_;
      } else {
        yielded_commit_ = item.commit_end;
      }
      queue_.pop_front();
      changed_.notify_all();
    }
    take_ends();
    return true;
  }

  [[nodiscard]] std::string position() const override {
    std::lock_guard lock(mutex_);
    if (yielded_commit_ == 0) return resumed_text_;
    return nlohmann::json{{"lsn", lsn_text(yielded_commit_)}, {"slot", config_.slot}}.dump();
  }

  void committed(std::string_view position) noexcept override {
    const auto document = nlohmann::json::parse(position, nullptr, false);
    if (!document.is_object() || !document.contains("lsn") || !document.at("lsn").is_string()) return;
    if (const auto lsn = parse_lsn(document.at("lsn").get<std::string>())) {
      std::uint64_t before = committed_.load();
      while (*lsn > before && !committed_.compare_exchange_weak(before, *lsn)) {
      }
    }
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    std::lock_guard lock(mutex_);
    sdk::SourceStats stats;
    stats.received = received_;
    return stats;
  }

 private:
  static sdk::RetryPolicy capped(sdk::RetryPolicy policy) {
    policy.max_delay = std::min(policy.max_delay, 2.0);
    return policy;
  }

  /// A connection for SQL (not replication); throws ReplicationError (transient) or
  /// sdk::PluginError (a failure no retry mends: a password, a database that does not exist).
  postgres::PgConn plain_connection() const {
    postgres::PgConn sql(PQconnectdb(conninfo_.c_str()));
    if (PQstatus(sql.get()) != CONNECTION_OK) {
      std::string message = PQerrorMessage(sql.get());
      while (!message.empty() && message.back() == '\n') message.pop_back();
      if (postgres::is_permanent_connect_failure(message)) throw sdk::PluginError("PostgreSQL at " + where_ + ": " + message);
      throw ReplicationError("PostgreSQL at " + where_ + ": cannot connect: " + message, true);
    }
    return sql;
  }

  /// Checks the server and the publication, creates what is missing (publication, slot), and
  /// learns the tables' columns. Throws ReplicationError (transient: retried) or
  /// sdk::PluginError (a configuration that cannot work).
  void prepare() {
    postgres::PgConn sql = plain_connection();
    const auto query = [&](const std::string& text, const std::vector<std::string>& params = {}) {
      std::vector<const char*> values;
      for (const auto& param : params) values.push_back(param.c_str());
      postgres::PgResult result(PQexecParams(sql.get(), text.c_str(), static_cast<int>(values.size()), nullptr,
                                             values.data(), nullptr, nullptr, 0));
      const auto status = PQresultStatus(result.get());
      if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        const std::string sqlstate = postgres::error_field(result.get(), PG_DIAG_SQLSTATE);
        const std::string message = "PostgreSQL at " + where_ + ": " + postgres::result_error(result.get(), sql.get());
        if (transient_sqlstate(sqlstate) && sqlstate != "55006") throw ReplicationError(message, true, sqlstate);
        throw sdk::PluginError(message);
      }
      return result;
    };

    const auto level = query("SHOW wal_level");
    if (std::string(PQgetvalue(level.get(), 0, 0)) != "logical") {
      throw sdk::PluginError("PostgreSQL at " + where_ + ": wal_level is " + PQgetvalue(level.get(), 0, 0) +
                             ", and logical replication needs logical: ALTER SYSTEM SET wal_level = logical; then restart "
                             "the server (or start it with -c wal_level=logical)");
    }

    const auto publication = query("SELECT 1 FROM pg_publication WHERE pubname = $1", {config_.publication});
    if (PQntuples(publication.get()) == 0) {
      if (!config_.create_publication) {
        throw sdk::PluginError("PostgreSQL at " + where_ + ": publication \"" + config_.publication +
                               "\" does not exist: CREATE PUBLICATION " + quote_identifier(config_.publication) +
                               " FOR TABLE ...; or set create_publication: true with tables");
      }
      std::string list;
      for (const auto& table : config_.tables) list += (list.empty() ? "" : ", ") + quote_table(table);
      query("CREATE PUBLICATION " + quote_identifier(config_.publication) + " FOR TABLE " + list);
      context_.log(sdk::LogLevel::info, "created publication \"" + config_.publication + "\" for " + list);
    }

    const auto tables = query(
        "SELECT c.oid, p.schemaname, p.tablename, c.relreplident, "
        "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident)) "
        "FROM pg_publication_tables p JOIN pg_namespace n ON n.nspname = p.schemaname "
        "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename "
        "WHERE p.pubname = $1 ORDER BY 2, 3",
        {config_.publication});
    tables_.clear();
    snapshot_tables_.clear();
    fields_.clear();
    std::set<std::string> published;
    for (int row = 0; row < PQntuples(tables.get()); ++row) {
      const std::string name = std::string(PQgetvalue(tables.get(), row, 1)) + "." + PQgetvalue(tables.get(), row, 2);
      const char identity = PQgetvalue(tables.get(), row, 3)[0];
      const bool keyed = PQgetvalue(tables.get(), row, 4)[0] == 't';
      if (identity == 'n' || (identity == 'd' && !keyed)) {
        throw sdk::PluginError("table " + name + " in publication \"" + config_.publication +
                               "\" has no replica identity (" + (identity == 'n' ? "REPLICA IDENTITY NOTHING" : "no primary key") +
                               "): its updates and deletes could not say which row they change, and PostgreSQL refuses "
                               "them while it is published. Give it a primary key, or ALTER TABLE " + name +
                               " REPLICA IDENTITY FULL");
      }
      tables_.push_back(name);
      snapshot_tables_.emplace_back(PQgetvalue(tables.get(), row, 1), PQgetvalue(tables.get(), row, 2));
      published.insert(name);
      published.insert(PQgetvalue(tables.get(), row, 2));
      const auto columns = query("SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped "
                                 "ORDER BY attnum",
                                 {PQgetvalue(tables.get(), row, 0)});
      for (int column = 0; column < PQntuples(columns.get()); ++column) {
        const std::string field = PQgetvalue(columns.get(), column, 0);
        if (std::find(fields_.begin(), fields_.end(), field) == fields_.end()) fields_.push_back(field);
      }
    }
    for (const auto& table : config_.tables) {
      if (!published.contains(table)) {
        throw sdk::PluginError("table " + table + " is not in publication \"" + config_.publication +
                               "\": ALTER PUBLICATION " + quote_identifier(config_.publication) + " ADD TABLE " + quote_table(table));
      }
    }
    if (tables_.empty()) {
      context_.log(sdk::LogLevel::warning, "publication \"" + config_.publication + "\" has no tables: nothing will be captured");
    }
    for (const auto& name : change_fields()) fields_.push_back(name);

    const auto slot = query("SELECT plugin, database, confirmed_flush_lsn, active_pid, temporary FROM pg_replication_slots "
                            "WHERE slot_name = $1",
                            {config_.slot});
    const bool snapshot_now = config_.snapshot == "initial" && resumed_ == 0;
    if (snapshot_now && PQntuples(slot.get()) == 0) {
      begin_exported_snapshot();
    } else if (PQntuples(slot.get()) == 0) {
      if (resumed_ != 0) {
        throw sdk::PluginError("replication slot \"" + config_.slot + "\" does not exist, though this pipeline's state "
                               "has a position in it (" + lsn_text(resumed_) + "): it was dropped, and the changes since are "
                               "lost to it. `etl-host state reset PIPELINE` starts over with a new slot (reload the tables)");
      }
      create_slot();
    } else {
      if (std::string(PQgetvalue(slot.get(), 0, 0)) != "pgoutput") {
        throw sdk::PluginError("replication slot \"" + config_.slot + "\" uses the output plugin " + PQgetvalue(slot.get(), 0, 0) +
                               ", not pgoutput: give postgres-cdc a slot of its own");
      }
      if (std::string(PQgetvalue(slot.get(), 0, 1)) != config_.dbname) {
        throw sdk::PluginError("replication slot \"" + config_.slot + "\" belongs to database " + PQgetvalue(slot.get(), 0, 1) +
                               ", not " + config_.dbname);
      }
      if (!PQgetisnull(slot.get(), 0, 2)) slot_confirmed_ = parse_lsn(PQgetvalue(slot.get(), 0, 2)).value_or(0);
      if (snapshot_now) {
        // A slot without a committed position: a run whose snapshot did not finish. Its exported
        // snapshot is gone; a newer one is read, and the changes since the slot's start are
        // applied over it — rows touched in between are written again, to the same end (a
        // keyed sink converges: what was deleted meanwhile is deleted again).
        context_.log(sdk::LogLevel::warning, "replication slot \"" + config_.slot + "\" exists without a committed position "
                                             "(a snapshot that did not finish): the tables are read again in a newer snapshot, "
                                             "and the changes from " + lsn_text(slot_confirmed_) + " on are applied over it");
        begin_plain_snapshot();
      }
    }
    if (config_.end == "caught_up") {
      const auto current = query("SELECT pg_current_wal_lsn()");
      end_target_ = parse_lsn(PQgetvalue(current.get(), 0, 0)).value_or(0);
    }
    if (auto* service = sdk::service_of(context_)) service->set_ready(true, "");
  }

  /// snapshot: initial. Creates the slot exporting its snapshot, and imports that snapshot into
  /// a transaction of snapshot_sql_, in which stream() reads the tables before streaming.
  void begin_exported_snapshot() {
    postgres::PgConn replication;
    const std::string snapshot = create_slot(&replication);
    // The exported snapshot lives while the replication connection runs nothing else; once
    // imported, the reading transaction keeps it by itself.
    begin_snapshot_transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '" + snapshot + "'");
    context_.log(sdk::LogLevel::info, "created replication slot \"" + config_.slot + "\" at " + lsn_text(slot_confirmed_) +
                                          "; reading " + std::to_string(tables_.size()) + " table(s) in its snapshot first");
  }

  /// A snapshot of now (REPEATABLE READ: taken at its first query), later than the slot's
  /// start: see prepare() for why that converges.
  void begin_plain_snapshot() { begin_snapshot_transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }

  /// Opens snapshot_sql_ and runs `begin` on it; throws ReplicationError (transient: the
  /// snapshot is taken again) when either fails.
  void begin_snapshot_transaction(const std::string& begin) {
    snapshot_sql_.reset(PQconnectdb(conninfo_.c_str()));
    std::string message;
    if (PQstatus(snapshot_sql_.get()) != CONNECTION_OK) {
      message = std::string("cannot connect to read the snapshot: ") + PQerrorMessage(snapshot_sql_.get());
    } else {
      postgres::PgResult begun(PQexec(snapshot_sql_.get(), begin.c_str()));
      if (PQresultStatus(begun.get()) == PGRES_COMMAND_OK) return;
      message = "cannot begin the snapshot: " + postgres::result_error(begun.get(), snapshot_sql_.get());
    }
    snapshot_sql_.reset();
    throw ReplicationError("PostgreSQL at " + where_ + ": " + message, true);
  }

  /// Reads every published table in the imported snapshot as _op "read" records, then ends the
  /// snapshot with a transaction end at the slot's start: streaming goes on from there.
  bool read_snapshot() {
    const auto fail = [&](const std::string& what, const PGresult* result) {
      const std::string sqlstate = postgres::error_field(result, PG_DIAG_SQLSTATE);
      const std::string message = "the initial snapshot failed (" + what + ": " + postgres::result_error(result, snapshot_sql_.get()) + ")";
      if (PQstatus(snapshot_sql_.get()) == CONNECTION_BAD || transient_sqlstate(sqlstate)) throw ReplicationError(message, true, sqlstate);
      throw sdk::PluginError(message + "; the next run reads it again from the start");
    };
    std::uint64_t rows = 0;
    for (const auto& table : snapshot_tables_) {
      const std::string declare = "DECLARE etl_snapshot NO SCROLL CURSOR FOR SELECT * FROM " +
                                  quote_identifier(table.first) + "." + quote_identifier(table.second);
      postgres::PgResult declared(PQexec(snapshot_sql_.get(), declare.c_str()));
      if (PQresultStatus(declared.get()) != PGRES_COMMAND_OK) fail("reading " + table.first + "." + table.second, declared.get());
      const std::string shown = qualified_name(table.first, table.second);
      std::uint64_t number = 0;
      for (;;) {
        postgres::PgResult batch(PQexec(snapshot_sql_.get(), "FETCH FORWARD 2000 FROM etl_snapshot"));
        if (PQresultStatus(batch.get()) != PGRES_TUPLES_OK) fail("reading " + shown, batch.get());
        const int count = PQntuples(batch.get());
        if (count == 0) break;
        const int columns = PQnfields(batch.get());
        for (int row = 0; row < count; ++row) {
          sdk::Record record;
          auto& fields = record.fields();
          fields.reserve(static_cast<std::size_t>(columns) + 5);
          for (int column = 0; column < columns; ++column) {
            if (PQgetisnull(batch.get(), row, column)) {
              fields.push_back(sdk::Field{PQfname(batch.get(), column), sdk::Value()});
            } else {
              fields.push_back(sdk::Field{PQfname(batch.get(), column),
                                          column_value(PQftype(batch.get(), column), PQgetvalue(batch.get(), row, column))});
            }
          }
          fields.push_back(sdk::Field{"_op", sdk::Value("read")});
          fields.push_back(sdk::Field{"_table", sdk::Value(shown)});
          fields.push_back(sdk::Field{"_lsn", sdk::Value(lsn_text(slot_confirmed_))});
          fields.push_back(sdk::Field{"_commit_time", sdk::Value()});
          fields.push_back(sdk::Field{"_xid", sdk::Value()});
          record.origin = shown + "@snapshot:" + std::to_string(++number);
          if (!push_waiting(Item{std::move(record), 0})) return false;  // stopping
        }
        rows += static_cast<std::uint64_t>(count);
      }
      postgres::PgResult closed(PQexec(snapshot_sql_.get(), "CLOSE etl_snapshot"));
    }
    postgres::PgResult committed(PQexec(snapshot_sql_.get(), "COMMIT"));
    snapshot_sql_.reset();
    handed_commit_ = slot_confirmed_;
    stream_from_ = slot_confirmed_;
    push(Item{std::nullopt, slot_confirmed_});  // its end: no record, so never held back by a stop
    context_.log(sdk::LogLevel::info, "snapshot read: " + std::to_string(rows) + " row(s) of " +
                                          std::to_string(snapshot_tables_.size()) + " table(s); streaming changes from " +
                                          lsn_text(slot_confirmed_));
    return true;
  }

  /// After a lost snapshot: begins a newer one (the slot kept: its changes from its start are
  /// applied over it) until that works or the wait ends; false (snapshot_error_ set when it can
  /// never work) otherwise.
  bool retake_snapshot() {
    for (;;) {
      try {
        begin_plain_snapshot();
        if (outage_) {
          outage_ = false;
          context_.log(sdk::LogLevel::info, "PostgreSQL at " + where_ + " answers again: reading the snapshot again (a newer "
                                            "one; the changes from " + lsn_text(slot_confirmed_) + " on are applied over it)");
          if (auto* service = sdk::service_of(context_)) service->set_ready(true, "");
        }
        backoff_.succeeded();
        return snapshot_sql_ != nullptr;
      } catch (const ReplicationError& e) {
        if (!wait_to_reconnect(e.what())) return false;
      } catch (const std::exception& e) {
        snapshot_error_ = e.what();
        return false;
      }
    }
  }

  /// Queues an item, waiting while the queue is full; false when the source is stopping.
  bool push_waiting(Item item) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return queue_.size() < config_.max_queue || stopping_ || context_.stop_requested(); });
    if (stopping_ || context_.stop_requested()) return false;
    queue_.push_back(std::move(item));
    changed_.notify_all();
    return true;
  }

  /// Creates the slot (pgoutput) over a replication connection. With `exporting`, the slot's
  /// snapshot is exported and its name returned: it lives while *exporting (the connection,
  /// handed back) runs nothing else.
  std::string create_slot(postgres::PgConn* exporting = nullptr) {
    postgres::PgConn connection(PQconnectdb((conninfo_ + " replication='database'").c_str()));
    if (PQstatus(connection.get()) != CONNECTION_OK) {
      throw ReplicationError("PostgreSQL at " + where_ + ": cannot open a replication connection: " + PQerrorMessage(connection.get()),
                             true);
    }
    const std::string command = "CREATE_REPLICATION_SLOT " + quote_identifier(config_.slot) + " LOGICAL pgoutput " +
                                (exporting != nullptr ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
    postgres::PgResult result(PQexec(connection.get(), command.c_str()));
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
      throw sdk::PluginError("PostgreSQL at " + where_ + ": cannot create replication slot \"" + config_.slot +
                             "\": " + postgres::result_error(result.get(), connection.get()));
    }
    slot_confirmed_ = parse_lsn(PQgetvalue(result.get(), 0, 1)).value_or(0);
    std::string snapshot = PQgetisnull(result.get(), 0, 2) ? std::string() : PQgetvalue(result.get(), 0, 2);
    if (exporting != nullptr) {
      *exporting = std::move(connection);
    } else {
      context_.log(sdk::LogLevel::info, "created replication slot \"" + config_.slot + "\" at " + lsn_text(slot_confirmed_));
    }
    return snapshot;
  }

  bool wait_to_reconnect(const std::string& reason) {
    const auto delay = backoff_.failed();
    if (!delay || context_.stop_requested() || stopping()) return false;
    if (!outage_) {
      outage_ = true;
      context_.log(sdk::LogLevel::warning, reason + "; reconnecting (" + backoff_.progress_text() + ")");
      if (auto* service = sdk::service_of(context_)) service->set_ready(false, reason);
    }
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(*delay));
    std::unique_lock lock(mutex_);
    return !changed_.wait_until(lock, until, [&] { return stopping_ || context_.stop_requested(); });
  }

  bool stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  /// The position to confirm: what the host committed, or — when everything handed over is
  /// committed and no transaction is open — the server's WAL end as last sent (nothing of the
  /// publication before it is left unsent), so that an idle slot does not hold other tables' WAL.
  [[nodiscard]] std::uint64_t confirmable() const {
    const std::uint64_t settled = committed_.load();
    if (!in_transaction_ && settled >= handed_commit_ && server_end_ > settled) return server_end_;
    return settled;
  }

  /// The replication thread: streams, decodes, queues; reconnects; confirms.
  void stream() {
    ReplicationStream replication(conninfo_, where_);
    PgOutputDecoder decoder;
    TransactionFacts transaction;
    auto last_status = Clock::now();
    const auto status_every = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(config_.status_interval));
    std::uint64_t confirmed_sent = 0;
    std::exception_ptr error;
    const auto send_status = [&](bool reply_requested) {
      const std::uint64_t flush = confirmable();
      replication.send_status(flush, reply_requested);
      confirmed_sent = flush;
      last_status = Clock::now();
      if (auto* service = sdk::service_of(context_)) {
        // What the slot still holds for this pipeline: the server's WAL end as last told, less
        // the position confirmed (0 when idle and caught up).
        service->set_gauge("etl_cdc_unconfirmed_bytes", "WAL bytes between the server's end and the slot's confirmed position.",
                           static_cast<double>(server_end_ > flush ? server_end_ - flush : 0));
      }
    };
    if (snapshot_sql_) {
      std::exception_ptr failed;
      bool read = false;
      for (;;) {
        try {
          read = read_snapshot();
        } catch (const ReplicationError& e) {
          // A lost connection: the snapshot cannot go on where it was, so it is taken again
          // (a new slot, its own snapshot; rows read twice are the same rows, applied again).
          // In a service for as long as it runs; otherwise within retry.attempts.
          snapshot_sql_.reset();
          if (wait_to_reconnect(std::string(e.what()) + "; the snapshot is read again")) {
            if (retake_snapshot()) continue;
            if (!snapshot_error_.empty()) failed = std::make_exception_ptr(sdk::PluginError(snapshot_error_));
          } else if (!stopping() && !context_.stop_requested()) {
            failed = std::make_exception_ptr(sdk::PluginError(std::string(e.what()) + " (" + backoff_.spent_text() + ")"));
          }
        } catch (const std::exception& e) {
          failed = std::make_exception_ptr(sdk::PluginError(e.what()));
        }
        break;
      }
      if (!read) {  // failed, or stopped before it was read whole
        std::lock_guard lock(mutex_);
        error_ = failed;
        done_ = true;
        changed_.notify_all();
        return;
      }
    }
    while (!stopping()) {
      try {
        if (!replication.connected()) {
          in_transaction_ = false;
          replication.start(config_.slot, config_.publication, config_.proto_version, stream_from_);
          if (outage_) {
            outage_ = false;
            context_.log(sdk::LogLevel::info, "replication from " + where_ + " streams again (from " + lsn_text(stream_from_) + ")");
            if (auto* service = sdk::service_of(context_)) service->set_ready(true, "");
          }
          backoff_.succeeded();
          last_status = Clock::now();
        }
        if (caught_up()) {
          finish_caught_up(replication, send_status, status_every, last_status);
          return;
        }
        {
          // The pipeline is behind: the stream waits (the server keeps the WAL), status goes on.
          std::unique_lock lock(mutex_);
          if (queue_.size() >= config_.max_queue) {
            changed_.wait_for(lock, std::chrono::milliseconds(100),
                              [&] { return queue_.size() < config_.max_queue || stopping_; });
            lock.unlock();
            if (Clock::now() - last_status >= status_every) send_status(false);
            continue;
          }
        }
        const auto message = replication.next(std::chrono::milliseconds(100));
        if (message.kind == ReplicationStream::Message::Kind::keepalive) {
          server_end_ = std::max(server_end_, message.wal_end);
          if (message.reply_requested || confirmable() != confirmed_sent) send_status(false);
          if (server_shutting_down(message.reply_requested && confirmable() < message.wal_end)) {
            // A server shutting down waits until its client confirms everything it sent, which
            // this one may not (those changes are not settled yet): leaving lets it stop. The
            // stream resumes once it is back; nothing unconfirmed is lost.
            throw ReplicationError("PostgreSQL at " + where_ + " is shutting down and waits for a confirmation of " +
                                       lsn_text(message.wal_end) + " the pipeline cannot give yet (settled up to " +
                                       lsn_text(confirmable()) + "): the stream is closed",
                                   true);
          }
        } else if (message.kind == ReplicationStream::Message::Kind::data) {
          handle(decoder.decode(message.payload), message.wal_start, transaction);
        } else if (config_.end == "caught_up" && !in_transaction_) {
          send_status(true);  // idle: a keepalive with the server's end says whether anything is left
        }
        if (Clock::now() - last_status >= status_every || (confirmable() != confirmed_sent && !in_transaction_ &&
                                                            Clock::now() - last_status >= std::chrono::seconds(1))) {
          send_status(false);
        }
      } catch (const ReplicationError& e) {
        replication.close();
        stream_from_ = std::max(stream_from_, handed_commit_);
        if (!e.transient() || !wait_to_reconnect(e.what())) {
          if (!stopping() && !context_.stop_requested()) {
            error = std::make_exception_ptr(sdk::PluginError(std::string(e.what()) +
                                                             (e.transient() ? " (" + backoff_.spent_text() + ")" : "")));
          }
          break;
        }
      } catch (const std::exception& e) {
        error = std::make_exception_ptr(sdk::PluginError(std::string("replication from ") + where_ + ": " + e.what()));
        break;
      }
    }
    // The last confirmation: what the host committed by now (the final commit comes before the
    // source is destroyed).
    try {
      if (replication.connected()) send_status(false);
    } catch (const std::exception&) {
      // the server learns it at the next run's START_REPLICATION
    }
    std::lock_guard lock(mutex_);
    error_ = error;
    done_ = true;
    changed_.notify_all();
  }

  /// end: caught_up, everything handed over: read() ends once it has yielded it, and the
  /// connection stays until the source is destroyed — after the host's last commit, which is
  /// then confirmed.
  template <class SendStatus>
  void finish_caught_up(ReplicationStream& replication, SendStatus& send_status, Clock::duration status_every,
                        Clock::time_point& last_status) {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
      changed_.notify_all();
    }
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      changed_.wait_for(lock, std::chrono::milliseconds(100));
      if (stopping_ || Clock::now() - last_status < status_every) continue;
      lock.unlock();
      try {
        send_status(false);
      } catch (const std::exception&) {
        // the next run starts from the committed position anyway
      }
      lock.lock();
    }
    lock.unlock();
    try {
      if (replication.connected()) send_status(false);
    } catch (const std::exception&) {
    }
  }

  /// Whether the server asks again and again for a confirmation it cannot have: `waiting` (a
  /// keepalive asking for a reply, with more sent than can be confirmed) three times within
  /// 2 s. In streaming the server asks for a reply only after wal_sender_timeout / 2 without
  /// one (status updates come far more often); in a shutdown it asks at once after each reply.
  bool server_shutting_down(bool waiting) {
    const auto now = Clock::now();
    if (!waiting) return false;
    while (!asked_.empty() && now - asked_.front() > std::chrono::seconds(2)) asked_.pop_front();
    asked_.push_back(now);
    if (asked_.size() < 3) return false;
    asked_.clear();
    return true;
  }

  [[nodiscard]] bool caught_up() const {
    return config_.end == "caught_up" && !in_transaction_ && (handed_commit_ >= end_target_ || server_end_ >= end_target_);
  }

  void handle(const Message& message, std::uint64_t lsn, TransactionFacts& transaction) {
    switch (message.kind) {
      case Message::Kind::begin:
        in_transaction_ = true;
        transaction.xid = message.xid;
        transaction.commit_time = message.commit_time;
        return;
      case Message::Kind::commit: {
        in_transaction_ = false;
        handed_commit_ = message.end_lsn;
        server_end_ = std::max(server_end_, message.end_lsn);
        push(Item{std::nullopt, message.end_lsn});
        return;
      }
      case Message::Kind::insert:
      case Message::Kind::update:
      case Message::Kind::remove:
        push(Item{change_record(message, transaction, lsn), 0});
        return;
      case Message::Kind::truncate:
        for (auto& record : truncate_records(message, transaction, lsn)) push(Item{std::move(record), 0});
        return;
      case Message::Kind::relation:
      case Message::Kind::ignored:
        return;
    }
  }

  void push(Item item) {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(item));
    changed_.notify_all();
  }

  Config config_;
  sdk::Context& context_;
  sdk::Backoff backoff_;
  std::string conninfo_;
  std::string where_;
  bool state_configured_ = false;
  std::uint64_t resumed_ = 0;
  std::string resumed_text_;
  std::uint64_t slot_confirmed_ = 0;
  std::uint64_t end_target_ = 0;
  std::vector<std::string> tables_;
  std::vector<std::pair<std::string, std::string>> snapshot_tables_;  // schema, name
  std::vector<std::string> fields_;
  postgres::PgConn snapshot_sql_;  // snapshot: initial, until read: the transaction in the slot's snapshot
  std::string snapshot_error_;     // why the snapshot could not be taken again

  // The replication thread's own.
  std::uint64_t stream_from_ = 0;    // where START_REPLICATION starts
  std::uint64_t handed_commit_ = 0;  // the end of the last transaction queued whole
  std::uint64_t server_end_ = 0;     // the server's WAL end as last told
  bool in_transaction_ = false;
  std::deque<Clock::time_point> asked_;  // keepalives that asked for a confirmation not possible yet
  std::atomic<bool> outage_{false};
  std::thread thread_;

  std::atomic<std::uint64_t> committed_{0};  // the host's last committed position (committed())

  mutable std::mutex mutex_;  // below
  std::condition_variable changed_;
  std::deque<Item> queue_;
  std::uint64_t yielded_commit_ = 0;  // the end of the last transaction read() handed over whole
  std::uint64_t received_ = 0;
  bool done_ = false;
  bool stopping_ = false;
  std::exception_ptr error_;
};

}  // namespace
}  // namespace etl::plugins::postgres_cdc

ETL_PLUGIN(etl::plugins::postgres_cdc::PostgresCdcSource, "postgres-cdc", "1.0.0",
           "Change data capture from PostgreSQL logical replication (pgoutput): every insert, update, delete and "
           "truncate of a publication's tables, the slot confirmed only behind final outcomes");
