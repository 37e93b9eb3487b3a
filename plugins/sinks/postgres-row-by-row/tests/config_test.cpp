// Config checks for postgres-row-by-row: a good config, and bad ones.

#include <gtest/gtest.h>

#include "plugin_harness.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

json good_config() {
  return {{"host", "db.example"}, {"user", "etl"}, {"password", "pw"}, {"dbname", "tokens"},
          {"table", "secret_tokens"}, {"columns", {{"token", "data"}}}};
}

TEST(PostgresRowByRowConfig, GoodConfigGetsDefaults) {
  const auto plugin = bundled_plugin("postgres-row-by-row");
  EXPECT_EQ(plugin.kind, sdk::PluginKind::sink);
  const auto checked = check_config(plugin, good_config());
  EXPECT_TRUE(checked.problems.empty()) << checked.problems_text();
  EXPECT_EQ(checked.config.at("port"), 5432);
  EXPECT_EQ(checked.config.at("sslmode"), "require");
  EXPECT_EQ(checked.config.at("pipeline"), true);
  EXPECT_EQ(checked.config.at("retry").at("attempts"), 5);
  EXPECT_EQ(checked.config.at("retry").at("max_delay"), 30);
  EXPECT_EQ(checked.config.at("answer_timeout"), 60);
  EXPECT_EQ(checked.config.at("lookup_unanswered"), true);
  // Creating the sink does no I/O: db.example is never contacted.
  auto sink = create_plugin<sdk::Sink>(plugin, good_config());
  EXPECT_NE(sink.object, nullptr);
}

TEST(PostgresRowByRowConfig, TheShortNamePostgresLoadsTheSameLibrary) {
  host::PluginRegistry registry;
  registry.scan({host::PluginRegistry::bundled_plugin_dir()});
  const auto& by_alias = registry.resolve("postgres");
  const auto& by_name = registry.resolve("postgres-row-by-row");
  EXPECT_EQ(by_alias.file, by_name.file);
  EXPECT_EQ(by_alias.name, "postgres-row-by-row");
  EXPECT_EQ(by_alias.aliases, (std::vector<std::string>{"postgres"}));
  EXPECT_EQ(by_alias.to_json().at("aliases"), json::array({"postgres"}));
}

TEST(PostgresRowByRowConfig, BadConfigsAreRefusedNamingTheKey) {
  const auto plugin = bundled_plugin("postgres-row-by-row");
  auto with = [](const std::string& key, json value) {
    json config = good_config();
    config[key] = std::move(value);
    return config;
  };
  auto without = [](const std::string& key) {
    json config = good_config();
    config.erase(key);
    return config;
  };
  const std::vector<std::pair<json, std::string>> cases = {
      {without("host"), "/host"},
      {with("port", 0), "/port"},
      {with("port", 70000), "/port"},
      {with("sslmode", "sometimes"), "/sslmode"},
      {with("connections", 0), "/connections"},
      {with("columns", json{{"token", 5}}), "/columns/token"},
      {with("tabel", "x"), "/tabel"},
      {with("retry", json{{"attempts", 0}}), "/retry/attempts"},
      {with("retry", json{{"initial_delay", -1}}), "/retry/initial_delay"},
      {with("retry", json{{"tries", 3}}), "/retry/tries"},
      {with("answer_timeout", 0), "/answer_timeout"},
      {with("lookup_unanswered", "yes"), "/lookup_unanswered"},
      {with("casts", json{{"dob", "date; DROP TABLE x"}}), "/casts/dob"},
      {with("missing_field", "default"), "/missing_field"},
      {with("constants", json{{"source", 1}}), "/constants/source"},
  };
  for (const auto& [config, pointer] : cases) {
    const auto checked = check_config(plugin, config);
    ASSERT_EQ(checked.problems.size(), 1u) << config << "\n" << checked.problems_text();
    EXPECT_EQ(checked.problems[0].pointer, pointer) << config;
  }
}

TEST(PostgresRowByRowConfig, ATableIsNeededButInStatementMode) {
  try {
    create_plugin<sdk::Sink>(bundled_plugin("postgres-row-by-row"), [] { json c = good_config(); c.erase("table"); return c; }());
    FAIL() << "expected a ConfigError";
  } catch (const sdk::ConfigError& e) {
    EXPECT_EQ(e.path(), "/table");
  }
  json statement = good_config();
  statement.erase("table");
  statement.erase("columns");
  statement["mode"] = "statement";
  statement["statement"] = "INSERT INTO secret_tokens (data) VALUES ($token)";
  EXPECT_NO_THROW(create_plugin<sdk::Sink>(bundled_plugin("postgres-row-by-row"), statement));
}

TEST(PostgresRowByRowConfig, EmptyColumnMappingIsRefusedByThePlugin) {
  try {
    create_plugin<sdk::Sink>(bundled_plugin("postgres-row-by-row"),
                             [] { json c = good_config(); c["columns"] = json::object(); return c; }());
    FAIL() << "expected a ConfigError";
  } catch (const sdk::ConfigError& e) {
    EXPECT_EQ(e.path(), "/columns");
  }
}

TEST(PostgresRowByRowConfig, PasswordIsMarkedSecret) {
  const auto plugin = bundled_plugin("postgres-row-by-row");
  const auto checked = check_config(plugin, good_config());
  host::ValidationResult result;
  json config = good_config();
  host::validate_against_schema(plugin.schema, config, "", {}, result);
  EXPECT_EQ(result.secrets, std::vector<std::string>{"pw"});
}

}  // namespace
}  // namespace etl::testing
