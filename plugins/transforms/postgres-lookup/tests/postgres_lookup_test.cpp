// postgres-lookup against a real, throwaway PostgreSQL server: typed fields from the first
// row, the not-found policy, a value the query's types refuse, the cache, and config errors.
#include <gtest/gtest.h>

#include "plugin_harness.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

class PostgresLookup : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new PostgresServer();
    server_->query(
        "CREATE TABLE users (name text PRIMARY KEY, dob date, visits int, profile jsonb); "
        "INSERT INTO users VALUES ('ann', '1990-05-01', 3, '{\"plan\": \"pro\"}'), ('bob', NULL, 0, NULL); "
        "GRANT SELECT ON users TO etl;");
  }
  static void TearDownTestSuite() { delete server_; }

  static json config(json overrides = json::object()) {
    json c = {{"host", server_->get("DB_HOST")}, {"port", std::stoi(server_->get("DB_PORT"))},
              {"user", server_->get("DB_USER")}, {"password", server_->get("DB_PASS")},
              {"dbname", server_->get("DB_NAME")},
              {"query", "SELECT dob::text AS date_of_birth, visits, profile FROM users WHERE name = $username"}};
    c.update(overrides);
    return c;
  }

  static sdk::Record user(const std::string& name) {
    sdk::Record record;
    record.set("username", name);
    return record;
  }

  static PostgresServer* server_;
};
PostgresServer* PostgresLookup::server_ = nullptr;

TEST_F(PostgresLookup, FieldsFromTheFirstRowKeepTheirTypes) {
  auto transform = create_plugin<sdk::Transform>(bundled_plugin("postgres-lookup"), config());
  transform.object->open();
  sdk::Record record = user("ann");
  sdk::Batch extra;
  const auto result = transform.object->apply(record, extra);
  ASSERT_EQ(result.verdict, sdk::TransformResult::Verdict::keep) << result.message;
  EXPECT_EQ(*record.get("date_of_birth"), sdk::Value("1990-05-01"));
  EXPECT_EQ(*record.get("visits"), sdk::Value(std::int64_t{3}));
  EXPECT_EQ(record.get("profile")->type(), sdk::ValueType::json);
  sdk::Record bob = user("bob");
  ASSERT_EQ(transform.object->apply(bob, extra).verdict, sdk::TransformResult::Verdict::keep);
  EXPECT_TRUE(bob.get("date_of_birth")->is_null());
}

TEST_F(PostgresLookup, NotFoundIsRefusedOrPassedOn) {
  auto rejecting = create_plugin<sdk::Transform>(bundled_plugin("postgres-lookup"), config());
  rejecting.object->open();
  sdk::Record nobody = user("nobody");
  sdk::Batch extra;
  const auto refused = rejecting.object->apply(nobody, extra);
  EXPECT_EQ(refused.verdict, sdk::TransformResult::Verdict::refuse);
  EXPECT_EQ(refused.code, "not_found");
  EXPECT_EQ(refused.message, "no row for username=\"nobody\"");
  auto passing = create_plugin<sdk::Transform>(bundled_plugin("postgres-lookup"), config({{"not_found", "pass"}}));
  passing.object->open();
  sdk::Record again = user("nobody");
  EXPECT_EQ(passing.object->apply(again, extra).verdict, sdk::TransformResult::Verdict::keep);
  EXPECT_EQ(again.get("visits"), nullptr);
}

TEST_F(PostgresLookup, AValueTheQueryCannotTakeRefusesTheRecord) {
  auto transform = create_plugin<sdk::Transform>(
      bundled_plugin("postgres-lookup"), config({{"query", "SELECT name FROM users WHERE visits = $count::int"}}));
  transform.object->open();
  sdk::Record record;
  record.set("count", "three");
  sdk::Batch extra;
  const auto result = transform.object->apply(record, extra);
  EXPECT_EQ(result.verdict, sdk::TransformResult::Verdict::refuse);
  EXPECT_EQ(result.code, "22P02");
}

TEST_F(PostgresLookup, CachedAnswersDoNotAskAgain) {
  // The query counts its own executions in a sequence (nextval is not rolled back).
  server_->query("CREATE SEQUENCE IF NOT EXISTS lookup_calls; GRANT USAGE ON lookup_calls TO etl;");
  const auto calls = [&] { return std::stoll(server_->query("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM lookup_calls").at(0).at(0)); };
  auto transform = create_plugin<sdk::Transform>(
      bundled_plugin("postgres-lookup"),
      config({{"query", "SELECT visits, nextval('lookup_calls') AS call FROM users WHERE name = $username"}}));
  transform.object->open();
  const auto before = calls();
  sdk::Batch extra;
  for (int i = 0; i < 20; ++i) {
    sdk::Record record = user(i % 2 == 0 ? "ann" : "bob");
    ASSERT_EQ(transform.object->apply(record, extra).verdict, sdk::TransformResult::Verdict::keep);
  }
  EXPECT_EQ(calls() - before, 2) << "20 records of 2 keys: 2 queries, the rest from the cache";
  auto uncached = create_plugin<sdk::Transform>(
      bundled_plugin("postgres-lookup"),
      config({{"cache_size", 0}, {"query", "SELECT nextval('lookup_calls') AS call FROM users WHERE name = $username"}}));
  uncached.object->open();
  const auto again = calls();
  for (int i = 0; i < 5; ++i) {
    sdk::Record record = user("ann");
    ASSERT_EQ(uncached.object->apply(record, extra).verdict, sdk::TransformResult::Verdict::keep);
  }
  EXPECT_EQ(calls() - again, 5);
}

TEST_F(PostgresLookup, ConfigAndQueryErrorsNameTheProblem) {
  try {
    create_plugin<sdk::Transform>(bundled_plugin("postgres-lookup"), config({{"query", "SELECT 'open"}}));
    FAIL() << "expected a config error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("unterminated ' quote"), std::string::npos) << e.what();
  }
  auto broken = create_plugin<sdk::Transform>(bundled_plugin("postgres-lookup"),
                                              config({{"query", "SELECT nope FROM users WHERE name = $username"}}));
  try {
    broken.object->open();
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("column \"nope\" does not exist"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace etl::testing
