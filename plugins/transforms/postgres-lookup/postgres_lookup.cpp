// postgres-lookup: enriches each record from a query by key — `SELECT dob FROM users WHERE
// name = $username` — with the first row's columns as typed fields. Recent answers are kept in
// a small LRU cache; a key with no row is refused (code not_found) or passed on, as configured.

#include <chrono>
#include <random>

#include "etl/sdk.hpp"
#include "lru_cache.hpp"
#include "postgres/named_parameters.hpp"
#include "postgres/connection.hpp"
#include "postgres/values.hpp"

namespace etl::plugins::postgres_lookup {
namespace {

using postgres::PgResult;

struct Config : postgres::PgConnection {
  std::string query;
  std::string not_found = "reject";
  std::string not_found_code = "not_found";
  std::int64_t cache_size = 1000;
  double cache_ttl = 60;
  sdk::RetryPolicy retry;
};

/// The cached answer for one key: the first row's fields, or none (not found).
struct Answer {
  bool found = false;
  std::vector<sdk::Field> fields;
};

class PostgresLookup final : public sdk::Transform {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    postgres::declare_connection(map);
    map.key("query", &Config::query,
            "A query with named parameters from the record's fields ($name); the first row's columns become "
            "fields (rename them with AS).")
        .required()
        .min_length(1);
    map.key("not_found", &Config::not_found, "When the query returns no row: reject the record, or pass it on unchanged.")
        .one_of({"reject", "pass"});
    map.key("not_found_code", &Config::not_found_code, "The code of a record rejected for lack of a row.").min_length(1);
    map.key("cache_size", &Config::cache_size, "Answers kept, by key (0: ask every time).").minimum(0);
    map.key("cache_ttl", &Config::cache_ttl, "Seconds an answer is kept.").minimum(0);
    sdk::RetryPolicy::declare(map, &Config::retry, "Reconnects after a lost connection: attempts in a row.");
    return map;
  }

  PostgresLookup(Config config, sdk::Context& context)
      : config_(std::move(config)),
        context_(context),
        cache_(static_cast<std::size_t>(config_.cache_size),
               std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(config_.cache_ttl))) {
    try {
      statement_ = postgres::parse_named_parameters(config_.query);
    } catch (const std::invalid_argument& e) {
      throw sdk::ConfigError("/query", e.what());
    }
    conninfo_ = postgres::connection_string(postgres::connection_parameters(config_));
  }

  void open() override { connect(); }

  sdk::TransformResult apply(sdk::Record& record, sdk::Batch&) override {
    std::vector<std::optional<std::string>> values;
    std::string key;
    for (const auto& name : statement_.fields) {
      values.push_back(record.text(name));
      // Length-prefixed, so that ("a", "bc") and ("ab", "c") are different keys.
      key += values.back() ? std::to_string(values.back()->size()) + ":" + *values.back() : std::string("-");
      key += '|';
    }
    std::optional<Answer> answer = cache_.get(key);
    if (!answer) {
      auto asked = ask(values);
      if (!asked.first) return sdk::TransformResult::refuse(asked.second.first, asked.second.second);
      answer = std::move(*asked.first);
      cache_.put(key, *answer);
    }
    if (!answer->found) {
      if (config_.not_found == "pass") return sdk::TransformResult::keep();
      return sdk::TransformResult::refuse(config_.not_found_code, "no row for " + describe_key(values));
    }
    for (const auto& field : answer->fields) record.set(field.name, field.value);
    return sdk::TransformResult::keep();
  }

 private:
  std::string describe_key(const std::vector<std::optional<std::string>>& values) const {
    std::string out;
    for (std::size_t i = 0; i < values.size(); ++i) {
      out += (i == 0 ? "" : ", ") + statement_.fields[i] + "=" + (values[i] ? "\"" + *values[i] + "\"" : "null");
    }
    return out.empty() ? "the query" : out;
  }

  void connect() {
    connection_.reset(PQconnectdb(conninfo_.c_str()));
    if (!connection_ || PQstatus(connection_.get()) != CONNECTION_OK) {
      const std::string message = connection_ ? postgres::one_line(PQerrorMessage(connection_.get())) : "out of memory";
      connection_.reset();
      throw sdk::PluginError("cannot connect to PostgreSQL at " + postgres::describe(config_) + ": " + message);
    }
    PgResult prepared(PQprepare(connection_.get(), "lookup", statement_.sql.c_str(),
                                static_cast<int>(statement_.fields.size()), nullptr));
    if (PQresultStatus(prepared.get()) != PGRES_COMMAND_OK) {
      const std::string message = postgres::error_field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY);
      connection_.reset();
      throw sdk::PluginError("query " + config_.query + ": " + message);
    }
  }

  /// The answer, or the code and message of a refusal (a value the query's types refuse).
  std::pair<std::optional<Answer>, std::pair<std::string, std::string>> ask(
      const std::vector<std::optional<std::string>>& values) {
    std::vector<const char*> parameters;
    for (const auto& value : values) parameters.push_back(value ? value->c_str() : nullptr);
    // Bound: retry.attempts failures in a row (connecting, or a connection lost) for this record.
    sdk::Backoff backoff(config_.retry, /*service=*/false);
    while (true) {
      if (!connection_) {
        try {
          connect();
        } catch (const sdk::PluginError& e) {
          const auto delay = backoff.failed();
          if (!delay || context_.stop_requested()) throw sdk::PluginError(std::string(e.what()) + " (" + backoff.spent_text() + ")");
          context_.log(sdk::LogLevel::warning, std::string(e.what()) + "; trying again in " + sdk::seconds_text(*delay) +
                                                   " (" + backoff.progress_text() + ")");
          sdk::sleep_unless_stopped(context_, *delay);
          continue;
        }
      }
      PgResult result(PQexecPrepared(connection_.get(), "lookup", static_cast<int>(parameters.size()), parameters.data(),
                                     nullptr, nullptr, 0));
      const ExecStatusType status = PQresultStatus(result.get());
      if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        Answer answer;
        if (PQntuples(result.get()) > 0) {
          sdk::Record row;
          postgres::set_fields_from_row(result.get(), 0, row);
          answer.found = true;
          answer.fields = std::move(row.fields());
        }
        return {std::move(answer), {}};
      }
      if (PQstatus(connection_.get()) != CONNECTION_OK) {
        const std::string message = postgres::one_line(PQerrorMessage(connection_.get()));
        connection_.reset();
        if (!backoff.failed() || context_.stop_requested()) {
          throw sdk::PluginError("lost the connection to PostgreSQL at " + postgres::describe(config_) + ": " + message);
        }
        context_.log(sdk::LogLevel::warning, "lost the connection to " + postgres::describe(config_) + ": " + message +
                                                 "; reconnecting");
        continue;
      }
      const std::string sqlstate = postgres::error_field(result.get(), PG_DIAG_SQLSTATE);
      const std::string message = postgres::error_field(result.get(), PG_DIAG_MESSAGE_PRIMARY);
      // Data exceptions (22: a value the parameter's type refuses) are the record's fault.
      if (sqlstate.starts_with("22")) return {std::nullopt, {sqlstate, message}};
      throw sdk::PluginError("query " + config_.query + ": " + sqlstate + ": " + message);
    }
  }

  Config config_;
  sdk::Context& context_;
  postgres::NamedStatement statement_;
  std::string conninfo_;
  postgres::PgConn connection_;
  LruCache<std::string, Answer> cache_;
};

}  // namespace
}  // namespace etl::plugins::postgres_lookup

ETL_PLUGIN(etl::plugins::postgres_lookup::PostgresLookup, "postgres-lookup", "1.0.0",
           "Enriches records from a PostgreSQL query by key, with an LRU cache and a not-found policy");
