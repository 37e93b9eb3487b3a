// RowPlan: statements from the config, and each record's row or refusal. No server needed.

#include <gtest/gtest.h>

#include "postgres/row_plan.hpp"

namespace etl::plugins::postgres {
namespace {

WriteTarget table_config() {
  WriteTarget config;
  config.table = "customers";
  config.columns = {{"id", "id"}, {"name", "name"}, {"dob", "dob"}};
  return config;
}

sdk::Record record(std::initializer_list<std::pair<const char*, sdk::Value>> fields, std::uint64_t sequence = 1) {
  sdk::Record r;
  r.sequence = sequence;
  for (const auto& [name, value] : fields) r.set(name, value);
  return r;
}

std::string config_error(const WriteTarget& config) {
  try {
    RowPlan plan(config);
  } catch (const sdk::ConfigError& e) {
    return e.path() + ": " + e.what();
  }
  return "no error";
}

TEST(RowPlan, InsertBindsEveryMappedFieldInColumnOrder) {
  const RowPlan plan(table_config());
  ASSERT_EQ(plan.statements().size(), 1u);
  EXPECT_EQ(plan.statements()[0].sql,
            "INSERT INTO \"customers\" (\"dob\", \"id\", \"name\") VALUES ($1, $2, $3) RETURNING pg_current_xact_id()::text");
  Row row;
  EXPECT_FALSE(plan.fill(record({{"id", sdk::Value(std::int64_t{7})}, {"name", sdk::Value("Ann")}, {"dob", sdk::Value("2000-02-29")}}, 9), row));
  EXPECT_EQ(row.sequence, 9u);
  const auto values = plan.parameters(row);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_STREQ(values[0], "2000-02-29");
  EXPECT_STREQ(values[1], "7");
  EXPECT_STREQ(values[2], "Ann");
}

TEST(RowPlan, CastsConstantsAndDefaults) {
  WriteTarget config = table_config();
  config.casts = {{"dob", "date"}};
  config.constants = {{"source", "goquiz"}};
  config.defaults = {{"name", "(unknown)"}};
  const RowPlan plan(config);
  EXPECT_EQ(plan.statements()[0].sql,
            "INSERT INTO \"customers\" (\"dob\", \"id\", \"name\", \"source\") VALUES ($1::date, $2, $3, $4) "
            "RETURNING pg_current_xact_id()::text");
  EXPECT_NE(plan.lookup_sql().find("\"dob\" IS NOT DISTINCT FROM $1::date"), std::string::npos) << plan.lookup_sql();
  Row row;
  EXPECT_FALSE(plan.fill(record({{"id", sdk::Value("1")}, {"dob", sdk::Value("2001-01-01")}}), row));
  const auto values = plan.parameters(row);
  EXPECT_STREQ(values[2], "(unknown)");
  EXPECT_STREQ(values[3], "goquiz");
}

TEST(RowPlan, AMissingFieldIsRejectedOrNullAsConfigured) {
  WriteTarget config = table_config();
  Row row;
  const auto refusal = RowPlan(config).fill(record({{"id", sdk::Value("1")}, {"name", sdk::Value("A")}}), row);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->status, sdk::Status::rejected);
  EXPECT_EQ(refusal->code, "missing_field");
  EXPECT_NE(refusal->message.find("\"dob\""), std::string::npos) << refusal->message;
  config.missing_field = "null";
  const RowPlan lenient(config);
  EXPECT_FALSE(lenient.fill(record({{"id", sdk::Value("1")}, {"name", sdk::Value("A")}}), row));
  EXPECT_EQ(lenient.parameters(row)[0], nullptr);
  // A null value is written as NULL in either policy.
  EXPECT_FALSE(RowPlan(table_config()).fill(record({{"id", sdk::Value("1")}, {"name", sdk::Value()}, {"dob", sdk::Value()}}), row));
}

TEST(RowPlan, ANulByteIsRefusedRatherThanCut) {
  Row row;
  const auto refusal = RowPlan(table_config()).fill(
      record({{"id", sdk::Value("1")}, {"name", sdk::Value(std::string("a\0b", 3))}, {"dob", sdk::Value("x")}}), row);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, "22021");
}

TEST(RowPlan, KeysDecideTheHash) {
  WriteTarget config = table_config();
  config.mode = "upsert";
  config.conflict_columns = {"id"};
  const RowPlan plan(config);
  Row a, b, c;
  plan.fill(record({{"id", sdk::Value("1")}, {"name", sdk::Value("A")}, {"dob", sdk::Value("x")}}), a);
  plan.fill(record({{"id", sdk::Value("1")}, {"name", sdk::Value("B")}, {"dob", sdk::Value("y")}}), b);
  plan.fill(record({{"id", sdk::Value("2")}, {"name", sdk::Value("A")}, {"dob", sdk::Value("x")}}), c);
  EXPECT_EQ(a.key_hash, b.key_hash);
  EXPECT_NE(a.key_hash, c.key_hash);
  // Without keys, all values are the key (insert).
  const RowPlan insert(table_config());
  insert.fill(record({{"id", sdk::Value("1")}, {"name", sdk::Value("A")}, {"dob", sdk::Value("x")}}), a);
  insert.fill(record({{"id", sdk::Value("1")}, {"name", sdk::Value("B")}, {"dob", sdk::Value("x")}}), b);
  EXPECT_NE(a.key_hash, b.key_hash);
}

TEST(RowPlan, StatementsChosenByAFieldWithNamedParametersAndConstants) {
  WriteTarget config = table_config();
  config.mode = "statement";
  config.table.clear();
  config.columns.clear();
  config.constants = {{"origin", "webhook"}};
  config.statement_field = "event";
  config.statements = {{"created", "INSERT INTO task (id, origin, name) VALUES ($id, $origin, $name)"},
                       {"deleted", "UPDATE task SET deleted_at = now() WHERE id = $id"}};
  const RowPlan plan(config);
  ASSERT_EQ(plan.statements().size(), 2u);
  EXPECT_EQ(plan.statements()[0].sql, "INSERT INTO task (id, origin, name) VALUES ($1, $2, $3)");
  EXPECT_EQ(plan.statements()[1].sql, "UPDATE task SET deleted_at = now() WHERE id = $1");
  Row row;
  EXPECT_FALSE(plan.fill(record({{"event", sdk::Value("deleted")}, {"id", sdk::Value("42")}}), row));
  EXPECT_EQ(row.statement, 1u);
  ASSERT_EQ(plan.parameters(row).size(), 1u);
  EXPECT_STREQ(plan.parameters(row)[0], "42");
  // A record needs only its own statement's fields: "deleted" binds no name, "created" does.
  EXPECT_FALSE(plan.fill(record({{"event", sdk::Value("created")}, {"id", sdk::Value("42")}, {"name", sdk::Value("n")}}), row));
  EXPECT_STREQ(plan.parameters(row)[1], "webhook");
  const auto no_name = plan.fill(record({{"event", sdk::Value("created")}, {"id", sdk::Value("42")}}), row);
  ASSERT_TRUE(no_name);
  EXPECT_EQ(no_name->code, "missing_field");
  const auto unknown = plan.fill(record({{"event", sdk::Value("exploded")}, {"id", sdk::Value("1")}}), row);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->code, "unknown_statement");
  EXPECT_NE(unknown->message.find("\"exploded\""), std::string::npos);
  const auto missing = plan.fill(record({{"id", sdk::Value("1")}}), row);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->code, "unknown_statement");
}

TEST(RowPlan, ConfigsThatMakeNoPlanNameTheKey) {
  auto with = [](auto change) {
    WriteTarget config = table_config();
    change(config);
    return config_error(config);
  };
  EXPECT_EQ(with([](WriteTarget& c) { c.table.clear(); }).substr(0, 7), "/table:");
  EXPECT_EQ(with([](WriteTarget& c) { c.columns.clear(); }).substr(0, 9), "/columns:");
  EXPECT_EQ(with([](WriteTarget& c) { c.mode = "upsert"; }).substr(0, 18), "/conflict_columns:");
  EXPECT_EQ(with([](WriteTarget& c) { c.mode = "upsert"; c.conflict_columns = {"email"}; }).substr(0, 20), "/conflict_columns/0:");
  EXPECT_EQ(with([](WriteTarget& c) { c.mode = "delete"; }).substr(0, 13), "/key_columns:");
  EXPECT_EQ(with([](WriteTarget& c) { c.where = "x > 1"; }).substr(0, 7), "/where:");
  EXPECT_EQ(with([](WriteTarget& c) { c.casts = {{"age", "int"}}; }).substr(0, 11), "/casts/age:");
  EXPECT_EQ(with([](WriteTarget& c) { c.constants = {{"name", "x"}}; }).substr(0, 16), "/constants/name:");
  EXPECT_EQ(with([](WriteTarget& c) { c.mode = "statement"; c.table.clear(); c.columns.clear(); }).substr(0, 11), "/statement:");
  EXPECT_EQ(with([](WriteTarget& c) {
              c.mode = "statement";
              c.columns.clear();
              c.statements = {{"a", "SELECT 1"}};
            }).substr(0, 16),
            "/statement_field");
  EXPECT_EQ(with([](WriteTarget& c) {
              c.mode = "update";
              c.key_columns = {"id", "name", "dob"};
            }).substr(0, 9),
            "/columns:");
}

WriteTarget changes_config() {
  WriteTarget config;
  config.mode = "changes";
  config.table = "items";
  config.columns = {{"id", "id"}, {"body", "body"}, {"qty", "qty"}};
  config.key_columns = {"id"};
  return config;
}

std::vector<std::string> parameter_texts(const RowPlan& plan, const Row& row) {
  std::vector<std::string> texts;
  for (const char* value : plan.parameters(row)) texts.emplace_back(value ? value : "NULL");
  return texts;
}

TEST(RowPlan, ChangesPlanAStatementPerKindOfChange) {
  const RowPlan plan(changes_config());
  ASSERT_EQ(plan.statements().size(), 5u);
  EXPECT_EQ(plan.statements()[0].sql,
            "INSERT INTO \"items\" (\"body\", \"id\", \"qty\") VALUES ($1, $2, $3) ON CONFLICT (\"id\") DO UPDATE SET "
            "\"body\" = EXCLUDED.\"body\", \"qty\" = EXCLUDED.\"qty\" RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(plan.statements()[1].sql,
            "UPDATE \"items\" SET \"body\" = CASE WHEN $1::jsonb ? 'body' THEN \"items\".\"body\" ELSE $2 END, \"id\" = $3, "
            "\"qty\" = CASE WHEN $1::jsonb ? 'qty' THEN \"items\".\"qty\" ELSE $4 END WHERE (\"id\" = $5) OR (\"id\" = $6) "
            "RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(plan.statements()[2].sql,
            "WITH moved AS (DELETE FROM \"items\" WHERE \"id\" = $1) INSERT INTO \"items\" (\"body\", \"id\", \"qty\") VALUES "
            "($2, $3, $4) ON CONFLICT (\"id\") DO UPDATE SET \"body\" = EXCLUDED.\"body\", \"qty\" = EXCLUDED.\"qty\" "
            "RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(plan.statements()[3].sql, "DELETE FROM \"items\" WHERE \"id\" = $1 RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(plan.statements()[4].sql, "TRUNCATE \"items\"");
  EXPECT_EQ(plan.answer_mode(0), WriteMode::upsert);
  EXPECT_EQ(plan.answer_mode(1), WriteMode::update);
  EXPECT_EQ(plan.answer_mode(3), WriteMode::remove);
  EXPECT_TRUE(plan.absent_is_ok(3));
  EXPECT_FALSE(plan.absent_is_ok(1));
}

TEST(RowPlan, ChangesChooseTheStatementByOpUnchangedColumnsAndAMovedKey) {
  const RowPlan plan(changes_config());
  const auto seven = sdk::Value(std::int64_t{7});
  Row row;
  // An insert (or a snapshot's read, or a plain update): the upsert.
  ASSERT_FALSE(plan.fill(record({{"id", seven}, {"body", sdk::Value("long")}, {"qty", sdk::Value(std::int64_t{2})},
                                 {"_op", sdk::Value("read")}}),
                         row));
  EXPECT_EQ(row.statement, 0u);
  EXPECT_FALSE(row.barrier);
  EXPECT_EQ(parameter_texts(plan, row), (std::vector<std::string>{"long", "7", "2"}));
  const std::size_t key_hash = row.key_hash;

  // An update that did not send body: body is left as stored, never bound as NULL.
  ASSERT_FALSE(plan.fill(record({{"id", seven}, {"qty", sdk::Value(std::int64_t{3})}, {"_op", sdk::Value("update")},
                                 {"_unchanged", sdk::Value::json(R"(["body"])")}}),
                         row));
  EXPECT_EQ(row.statement, 1u);
  EXPECT_EQ(parameter_texts(plan, row), (std::vector<std::string>{R"(["body"])", "NULL", "7", "3", "7", "7"}));
  EXPECT_EQ(row.key_hash, key_hash) << "one row's changes share a key";

  // An update that moved the key from 6 to 7: the row at 6 goes, and the change is a barrier.
  ASSERT_FALSE(plan.fill(record({{"id", seven}, {"body", sdk::Value("b")}, {"qty", sdk::Value(std::int64_t{3})},
                                 {"_op", sdk::Value("update")}, {"_old", sdk::Value::json(R"({"id": 6})")}}),
                         row));
  EXPECT_EQ(row.statement, 2u);
  EXPECT_TRUE(row.barrier);
  EXPECT_EQ(parameter_texts(plan, row), (std::vector<std::string>{"6", "b", "7", "3"}));

  // REPLICA IDENTITY FULL: _old is the whole old row, with the same key — a plain upsert.
  ASSERT_FALSE(plan.fill(record({{"id", seven}, {"body", sdk::Value("c")}, {"qty", sdk::Value(std::int64_t{4})},
                                 {"_op", sdk::Value("update")}, {"_old", sdk::Value::json(R"({"id": 7, "qty": 3})")}}),
                         row));
  EXPECT_EQ(row.statement, 0u);
  EXPECT_FALSE(row.barrier);

  // A delete carries the old key only: the other columns are not needed.
  ASSERT_FALSE(plan.fill(record({{"id", seven}, {"_op", sdk::Value("delete")}}), row));
  EXPECT_EQ(row.statement, 3u);
  EXPECT_EQ(parameter_texts(plan, row), (std::vector<std::string>{"7"}));
  EXPECT_EQ(row.key_hash, key_hash);

  ASSERT_FALSE(plan.fill(record({{"_op", sdk::Value("truncate")}, {"_table", sdk::Value("public.items")}}), row));
  EXPECT_EQ(row.statement, 4u);
  EXPECT_TRUE(row.barrier);
  EXPECT_TRUE(plan.parameters(row).empty());
}

TEST(RowPlan, ChangesRefuseRecordsThatAreNotChanges) {
  const RowPlan plan(changes_config());
  Row row;
  auto refusal = plan.fill(record({{"id", sdk::Value(std::int64_t{1})}}), row);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, "unknown_op");
  refusal = plan.fill(record({{"id", sdk::Value(std::int64_t{1})}, {"_op", sdk::Value("upsert")}}), row);
  ASSERT_TRUE(refusal);
  EXPECT_NE(refusal->message.find("\"upsert\""), std::string::npos) << refusal->message;
  // A column missing from an insert that is not among the unchanged ones: missing_field decides.
  refusal = plan.fill(record({{"id", sdk::Value(std::int64_t{1})}, {"qty", sdk::Value(std::int64_t{1})},
                              {"_op", sdk::Value("insert")}}),
                      row);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, "missing_field");
  refusal = plan.fill(record({{"id", sdk::Value(std::int64_t{1})}, {"body", sdk::Value("x")}, {"qty", sdk::Value(std::int64_t{1})},
                              {"_op", sdk::Value("update")}, {"_unchanged", sdk::Value::json(R"({"body": 1})")}}),
                      row);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, "bad_change");
  // A delete without its key.
  refusal = plan.fill(record({{"_op", sdk::Value("delete")}}), row);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, "missing_field");
}

TEST(RowPlan, ChangesNeedATableMappedColumnsAndAMappedKey) {
  WriteTarget config = changes_config();
  config.key_columns = {};
  EXPECT_EQ(config_error(config).substr(0, 13), "/key_columns:");
  config.key_columns = {"sku"};
  EXPECT_EQ(config_error(config).substr(0, 15), "/key_columns/0:");
  config = changes_config();
  config.table = "";
  EXPECT_EQ(config_error(config).substr(0, 7), "/table:");
  config = changes_config();
  config.where = "true";
  EXPECT_EQ(config_error(config).substr(0, 7), "/where:");
}

}  // namespace
}  // namespace etl::plugins::postgres
