#include "postgres_state_store.hpp"

#include <libpq-fe.h>

#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "logging.hpp"

namespace etl::host {

namespace {

using nlohmann::json;

/// A table name as SQL: each dot-separated part quoted ("schema"."table").
std::string quoted_table(const std::string& name) {
  std::string sql;
  std::size_t from = 0;
  for (;;) {
    const std::size_t dot = name.find('.', from);
    const std::string part = name.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
    std::string quoted = "\"";
    for (const char c : part) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    sql += (sql.empty() ? "" : ".") + quoted + "\"";
    if (dot == std::string::npos) break;
    from = dot + 1;
  }
  return sql;
}

class Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  ~Result() { PQclear(result_); }
  Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  [[nodiscard]] PGresult* get() const { return result_; }
  [[nodiscard]] bool ok() const {
    const auto status = PQresultStatus(result_);
    return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
  }
  [[nodiscard]] int rows() const { return PQntuples(result_); }
  [[nodiscard]] std::string text(int row, int column) const {
    return PQgetisnull(result_, row, column) ? std::string() : std::string(PQgetvalue(result_, row, column));
  }

 private:
  PGresult* result_;
};

class PostgresStateStore final : public StateStore {
 public:
  PostgresStateStore(const json& settings, std::string pipeline)
      : pipeline_(std::move(pipeline)),
        table_(settings.value("table", std::string("etl_state"))),
        lease_seconds_(settings.value("lease", 60.0)) {
    auto add = [&](const char* key, const std::string& value) {
      if (!value.empty()) {
        keys_.emplace_back(key);
        values_.push_back(value);
      }
    };
    add("host", settings.value("host", std::string()));
    if (settings.contains("port")) add("port", settings.at("port").is_string() ? settings.at("port").get<std::string>()
                                                                          : settings.at("port").dump());
    add("user", settings.value("user", std::string()));
    add("password", settings.value("password", std::string()));
    add("dbname", settings.value("dbname", std::string()));
    add("sslmode", settings.value("sslmode", std::string("prefer")));
    add("sslrootcert", settings.value("sslrootcert", std::string()));
    add("connect_timeout", std::to_string(settings.value("connect_timeout", 10)));
    add("application_name", std::string("etl-host state"));
    where_ = "table " + table_ + " on " + settings.value("host", std::string("localhost")) + ":" +
             (settings.contains("port") ? settings.at("port").dump() : std::string("5432")) + "/" +
             settings.value("dbname", std::string());
  }
  ~PostgresStateStore() override {
    release();
    if (connection_ != nullptr) PQfinish(connection_);
  }

  [[nodiscard]] std::string describe() const override { return "state " + where_; }

  void acquire(const std::string& run_id) override {
    run_id_ = run_id;
    ensure_table();
    const std::string lease = std::to_string(lease_seconds_);
    Result taken = execute(
        "INSERT INTO " + quoted_table(table_) +
            " AS s (pipeline, lease_holder, lease_expires) VALUES ($1, $2, now() + $3::float8 * interval '1 second') "
            "ON CONFLICT (pipeline) DO UPDATE SET lease_holder = EXCLUDED.lease_holder, lease_expires = EXCLUDED.lease_expires "
            "WHERE s.lease_holder IS NULL OR s.lease_expires < now() OR s.lease_holder = EXCLUDED.lease_holder "
            "RETURNING pipeline",
        {pipeline_, run_id_, lease});
    if (taken.rows() == 1) {
      held_ = true;
      return;
    }
    Result holder = execute("SELECT lease_holder, lease_expires FROM " + quoted_table(table_) + " WHERE pipeline = $1",
                            {pipeline_});
    throw StateError("the state of pipeline '" + pipeline_ + "' (" + where_ + ") is held by run " +
                     (holder.rows() == 1 ? holder.text(0, 0) + " until " + holder.text(0, 1) : std::string("?")) +
                     ": one run of a pipeline at a time; this one does not start (a run that died leaves its lease "
                     "to expire, settings.state.lease seconds after its last commit)");
  }

  [[nodiscard]] std::optional<SavedState> load() override {
    ensure_table();
    Result row = execute("SELECT pipeline, source, position::text, to_char(committed_at AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), run, settled FROM " +
                             quoted_table(table_) + " WHERE pipeline = $1 AND position IS NOT NULL",
                         {pipeline_});
    if (row.rows() == 0) return std::nullopt;
    SavedState state;
    state.pipeline = row.text(0, 0);
    state.source = row.text(0, 1);
    state.position = row.text(0, 2);
    state.committed_at = row.text(0, 3);
    state.run = row.text(0, 4);
    state.settled = std::stoull(row.text(0, 5).empty() ? std::string("0") : row.text(0, 5));
    return state;
  }

  void commit(const SavedState& state) override {
    Result updated = execute(
        "UPDATE " + quoted_table(table_) +
            " SET source = $2, position = $3::jsonb, committed_at = $4::timestamptz, run = $5, settled = $6::bigint, "
            "lease_expires = now() + $7::float8 * interval '1 second' WHERE pipeline = $1 AND lease_holder = $5",
        {pipeline_, state.source, state.position, state.committed_at, run_id_, std::to_string(state.settled),
         std::to_string(lease_seconds_)});
    if (std::string(PQcmdTuples(updated.get())) != "1") {
      held_ = false;
      throw StateLeaseLost("the lease on pipeline '" + pipeline_ + "' (" + where_ +
                           ") was taken over by another run: this run commits nothing more and stops");
    }
  }

  void renew() override {
    Result renewed = execute("UPDATE " + quoted_table(table_) +
                                 " SET lease_expires = now() + $3::float8 * interval '1 second' WHERE pipeline = $1 AND "
                                 "lease_holder = $2",
                             {pipeline_, run_id_, std::to_string(lease_seconds_)});
    if (std::string(PQcmdTuples(renewed.get())) != "1") {
      held_ = false;
      throw StateLeaseLost("the lease on pipeline '" + pipeline_ + "' (" + where_ +
                           ") was taken over by another run: this run commits nothing more and stops");
    }
  }

  void reset() override {
    ensure_table();
    Result deleted = execute("DELETE FROM " + quoted_table(table_) +
                                 " WHERE pipeline = $1 AND (lease_holder IS NULL OR lease_expires < now())",
                             {pipeline_});
    if (std::string(PQcmdTuples(deleted.get())) == "0") {
      Result held = execute("SELECT lease_holder FROM " + quoted_table(table_) + " WHERE pipeline = $1", {pipeline_});
      if (held.rows() == 1) {
        throw StateError("the state of pipeline '" + pipeline_ + "' is held by run " + held.text(0, 0) +
                         "; reset it when that run has ended");
      }
    }
  }

  void release() noexcept override {
    if (!held_ || connection_ == nullptr) return;
    held_ = false;
    try {
      execute("UPDATE " + quoted_table(table_) +
                  " SET lease_holder = NULL, lease_expires = NULL WHERE pipeline = $1 AND lease_holder = $2",
              {pipeline_, run_id_});
    } catch (const std::exception&) {
      // Unreleased, the lease expires by itself.
    }
  }

 private:
  void connect() {
    if (connection_ != nullptr && PQstatus(connection_) == CONNECTION_OK) return;
    if (connection_ != nullptr) PQfinish(connection_);
    std::vector<const char*> keys;
    std::vector<const char*> values;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
      keys.push_back(keys_[i].c_str());
      values.push_back(values_[i].c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    connection_ = PQconnectdbParams(keys.data(), values.data(), 0);
    if (PQstatus(connection_) != CONNECTION_OK) {
      const std::string error = Redactor::instance().redact(PQerrorMessage(connection_));
      PQfinish(connection_);
      connection_ = nullptr;
      throw StateError("cannot connect to the state " + where_ + ": " + trimmed(error));
    }
  }

  void ensure_table() {
    if (table_ready_) return;
    execute("CREATE TABLE IF NOT EXISTS " + quoted_table(table_) +
                " (pipeline text PRIMARY KEY, source text, position jsonb, committed_at timestamptz, run text, "
                "settled bigint NOT NULL DEFAULT 0, lease_holder text, lease_expires timestamptz)",
            {});
    table_ready_ = true;
  }

  Result execute(const std::string& sql, const std::vector<std::string>& parameters) {
    for (int attempt = 0;; ++attempt) {
      connect();
      std::vector<const char*> values;
      for (const auto& parameter : parameters) values.push_back(parameter.c_str());
      Result result(PQexecParams(connection_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                 nullptr, nullptr, 0));
      if (result.ok()) return result;
      // A connection the server closed (a restart) is reopened once; anything else is the caller's.
      if (attempt == 0 && PQstatus(connection_) != CONNECTION_OK) continue;
      const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
      throw StateError("the state " + where_ + " refused: " + trimmed(PQresultErrorMessage(result.get())) +
                       (state != nullptr ? std::string(" (") + state + ")" : std::string()));
    }
  }

  static std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

  std::string pipeline_;
  std::string table_;
  double lease_seconds_;
  std::vector<std::string> keys_;
  std::vector<std::string> values_;
  std::string where_;
  std::string run_id_;
  PGconn* connection_ = nullptr;
  bool table_ready_ = false;
  bool held_ = false;
};

}  // namespace

std::unique_ptr<StateStore> make_postgres_state_store(const json& state_settings, const std::string& pipeline) {
  return std::make_unique<PostgresStateStore>(state_settings, pipeline);
}

}  // namespace etl::host
