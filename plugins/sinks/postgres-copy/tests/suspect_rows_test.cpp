// SuspectRows and what feeds it: which rows are guessed to fail from the table's definition,
// the catalog read into facts, and the suspects' rows as a text[] literal.

#include <gtest/gtest.h>

#include "postgres/sql_text.hpp"
#include "suspect_rows.hpp"
#include "postgres/table_facts.hpp"

namespace etl::plugins::postgres {
namespace {

/// id int4 NOT NULL, name varchar(5), born date, amount numeric(6,2) CHECK (amount >= 0), flag bool;
/// unique on id.
TableFacts people_facts() {
  TableFacts facts;
  facts.columns = {{ValueKind::int32, true, 0},
                   {ValueKind::text, false, 5},
                   {ValueKind::date, false, 0},
                   {ValueKind::decimal, false, 4},
                   {ValueKind::boolean, false, 0}};
  facts.checks = {{3, ">=", 0}};
  facts.unique_keys = {{0}};
  facts.nulls_equal = {false};
  return facts;
}

TEST(SuspectRows, PlainValuesOfEveryTypePass) {
  SuspectRows rows(people_facts());
  EXPECT_FALSE(rows.suspect("1\tAda\t1990-01-31\t12.50\tt"));
  EXPECT_FALSE(rows.suspect("2\t\\N\t2000-02-29\t0\tfalse"));  // a leap day; NULL where allowed
  EXPECT_FALSE(rows.suspect("-3\tÅs\\tB\t\\N\t999.99\t\\N"));  // 4 characters, one escaped (counted twice)
  EXPECT_EQ(rows.suspected(), 0u);
}

TEST(SuspectRows, ValuesTheServerWouldRefuseAreSuspected) {
  SuspectRows rows(people_facts());
  EXPECT_TRUE(rows.suspect("\\N\tAda\t1990-01-31\t1\tt")) << "NULL in a NOT NULL column";
  EXPECT_TRUE(rows.suspect("abc\tAda\t1990-01-31\t1\tt")) << "not an integer";
  EXPECT_TRUE(rows.suspect("2147483648\tAda\t1990-01-31\t1\tt")) << "beyond int4";
  EXPECT_TRUE(rows.suspect("5\tAdalbert\t1990-01-31\t1\tt")) << "longer than varchar(5)";
  EXPECT_TRUE(rows.suspect("6\tAda\t1990-02-30\t1\tt")) << "a day that does not exist";
  EXPECT_TRUE(rows.suspect("7\tAda\t1900-02-29\t1\tt")) << "1900 was no leap year";
  EXPECT_TRUE(rows.suspect("8\tAda\t1990-01-31\t-0.01\tt")) << "fails CHECK (amount >= 0)";
  EXPECT_TRUE(rows.suspect("9\tAda\t1990-01-31\t10000\tt")) << "five digits before the point in numeric(6,2)";
  EXPECT_TRUE(rows.suspect("10\tAda\t1990-01-31\t9999.999\tt")) << "rounds to five digits";
  EXPECT_TRUE(rows.suspect("11\tAda\t1990-01-31\t1\tmaybe")) << "not a boolean";
  EXPECT_TRUE(rows.suspect("12\tAda\t1990-01-31\t1")) << "a field short";
  EXPECT_EQ(rows.suspected(), 11u);
}

TEST(SuspectRows, OtherSpellingsAreSuspectedNotJudged) {
  // The server may well take these; a guess errs towards suspicion (it costs time, not rows).
  SuspectRows rows(people_facts());
  EXPECT_TRUE(rows.suspect("+1\tAda\t1990-01-31\t1\tt"));
  EXPECT_TRUE(rows.suspect("2\tAda\t19900131\t1\tt"));
  EXPECT_TRUE(rows.suspect("3\tAda\t1990-01-31\t1e3\tt"));
  EXPECT_TRUE(rows.suspect("4\tAda\t1990-01-31\t1\tyes"));
}

TEST(SuspectRows, TheLaterOfTwoRowsWithOneKeyIsSuspectedNotTheFirst) {
  SuspectRows rows(people_facts());
  EXPECT_FALSE(rows.suspect("1\tAda\t1990-01-31\t1\tt"));
  EXPECT_FALSE(rows.suspect("2\tBob\t1990-01-31\t1\tt"));
  EXPECT_TRUE(rows.suspect("1\tEve\t1990-01-31\t1\tt"));
  // A suspect's key is remembered too: a third row with it is suspected again.
  EXPECT_TRUE(rows.suspect("1\tEve\t1990-02-30\t1\tt"));
  EXPECT_FALSE(rows.suspect("3\tAda\t1990-01-31\t1\tt"));
}

TEST(SuspectRows, NullKeysNeverConflictUnlessNullsAreEqual) {
  TableFacts facts;
  facts.columns = {{ValueKind::any, false, 0}, {ValueKind::any, false, 0}};
  facts.unique_keys = {{0, 1}};
  facts.nulls_equal = {false};
  SuspectRows distinct(facts);
  EXPECT_FALSE(distinct.suspect("a\t\\N"));
  EXPECT_FALSE(distinct.suspect("a\t\\N"));
  EXPECT_FALSE(distinct.suspect("a\tb"));
  EXPECT_TRUE(distinct.suspect("a\tb"));
  EXPECT_FALSE(distinct.suspect("b\ta")) << "a composite key is its columns in order";
  facts.nulls_equal = {true};
  SuspectRows equal(facts);
  EXPECT_FALSE(equal.suspect("a\t\\N"));
  EXPECT_TRUE(equal.suspect("a\t\\N"));
}

TEST(SuspectRows, AKeyIsRememberedForAtLeastAGenerationOfKeys) {
  TableFacts facts;
  facts.columns = {{ValueKind::any, false, 0}};
  facts.unique_keys = {{0}};
  SuspectRows rows(facts);
  EXPECT_FALSE(rows.suspect("first"));
  std::size_t false_suspects = 0;
  const std::size_t keys = SuspectRows::kGenerationKeys + 1000;
  for (std::size_t i = 0; i < keys; ++i) false_suspects += rows.suspect("k" + std::to_string(i));
  // The first generation is full and became the previous one: "first" is still remembered,
  // and so is the newest key, in the current one.
  EXPECT_TRUE(rows.suspect("first"));
  EXPECT_TRUE(rows.suspect("k" + std::to_string(keys - 1)));
  EXPECT_FALSE(rows.suspect("a key never seen"));
  // Filled to their capacity, the filters suspect about 1 % of new keys in vain, not more.
  EXPECT_LT(false_suspects, SuspectRows::kGenerationKeys / 50);
}

TEST(SuspectRows, GuessingStopsWhenSuspectsMostlyGoIn) {
  SuspectRows rows(people_facts());
  EXPECT_FALSE(rows.judge(1000, 10));
  EXPECT_TRUE(rows.active());
  EXPECT_TRUE(rows.judge(1000, 10));  // 20 of 2000 refused: 1 %
  EXPECT_FALSE(rows.active());
  EXPECT_FALSE(rows.suspect("abc\tAda\t1990-01-31\t1\tt"));
  EXPECT_FALSE(rows.judge(5000, 0)) << "stopped once";

  SuspectRows useful(people_facts());
  EXPECT_FALSE(useful.judge(2000, 100));  // 5 %: worth it
  EXPECT_TRUE(useful.active());
}

TEST(SuspectRows, NothingToGuessFromIsNotUseful) {
  TableFacts facts;
  facts.columns = {{ValueKind::any, false, 0}};
  EXPECT_FALSE(SuspectRows(facts).useful());
}

TEST(ParseSimpleCheck, ReadsColumnOperatorNumberAndNothingElse) {
  const std::vector<std::string> columns = {"id", "amount", "Odd \"name\""};
  const auto numeric = parse_simple_check("CHECK ((amount >= (0)::numeric))", columns);
  ASSERT_TRUE(numeric);
  EXPECT_EQ(numeric->column, 1u);
  EXPECT_EQ(numeric->op, ">=");
  EXPECT_EQ(numeric->bound, 0);
  const auto plain = parse_simple_check("CHECK ((id < '-2.5'::numeric))", columns);
  EXPECT_FALSE(plain) << "a quoted literal is not read";
  const auto negative = parse_simple_check("CHECK ((id <> (-2)))", columns);
  ASSERT_TRUE(negative);
  EXPECT_EQ(negative->bound, -2);
  const auto quoted = parse_simple_check("CHECK ((\"Odd \"\"name\"\"\" > 1.5))", columns);
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->column, 2u);
  EXPECT_EQ(quoted->bound, 1.5);
  EXPECT_FALSE(parse_simple_check("CHECK ((length(name) > 1))", columns));
  EXPECT_FALSE(parse_simple_check("CHECK (((amount >= (0)::numeric) AND (id > 0)))", columns));
  EXPECT_FALSE(parse_simple_check("CHECK ((other > 0))", columns)) << "not a mapped column";
}

TEST(FactsFromCatalog, TypesLimitsChecksAndKeysOfTheMappedColumns) {
  const std::vector<CatalogColumn> columns = {
      {"id", "int8", 'b', true, -1, "bigint"},
      {"name", "varchar", 'b', false, 14, "character varying"},  // varchar(10)
      {"amount", "numeric", 'b', false, (8 << 16 | 2) + 4, "numeric"},  // numeric(8,2)
      {"mail", "email_address", 'd', true, -1, "email_address"},
      {"unmapped", "int4", 'b', true, -1, "integer"}};
  const std::vector<CatalogKey> keys = {{{"id"}, false}, {{"mail", "unmapped"}, false}, {{"name", "mail"}, true}};
  const std::vector<std::string> checks = {"CHECK ((amount > (0)::numeric))", "CHECK ((name > 0))", "CHECK ((id > 0))"};
  const auto facts = facts_from_catalog(columns, keys, checks, {"mail", "id", "name", "amount"});
  ASSERT_TRUE(facts);
  const auto& mapped = facts->facts.columns;
  ASSERT_EQ(mapped.size(), 4u);
  EXPECT_EQ(mapped[0].kind, ValueKind::any) << "a domain is not guessed";
  EXPECT_TRUE(mapped[0].not_null);
  EXPECT_EQ(mapped[1].kind, ValueKind::int64);
  EXPECT_EQ(mapped[2].kind, ValueKind::text);
  EXPECT_EQ(mapped[2].limit, 10u);
  EXPECT_EQ(mapped[3].kind, ValueKind::decimal);
  EXPECT_EQ(mapped[3].limit, 6u);
  EXPECT_EQ(facts->sql_types, (std::vector<std::string>{"email_address", "bigint", "character varying", "numeric"}));
  // The CHECK on a text column is not guessed.
  ASSERT_EQ(facts->facts.checks.size(), 2u);
  EXPECT_EQ(facts->facts.checks[0].column, 3u);
  EXPECT_EQ(facts->facts.checks[1].column, 1u);
  // The key with an unmapped column is left to the server.
  ASSERT_EQ(facts->facts.unique_keys.size(), 2u);
  EXPECT_EQ(facts->facts.unique_keys[0], (std::vector<std::size_t>{1}));
  EXPECT_EQ(facts->facts.unique_keys[1], (std::vector<std::size_t>{2, 0}));
  EXPECT_EQ(facts->facts.nulls_equal, (std::vector<bool>{false, true}));

  EXPECT_FALSE(facts_from_catalog(columns, keys, checks, {"id", "missing"}));
}

TEST(AppendArrayRow, CopyTextBecomesOneRowOfATextArrayLiteral) {
  std::string out;
  append_array_row(out, "1\ttab\\there\t\\N\tquote \" and \\\\ backslash\tnew\\nline");
  EXPECT_EQ(out, "{\"1\",\"tab\there\",NULL,\"quote \\\" and \\\\ backslash\",\"new\nline\"}");
}

TEST(InsertEachFunction, QuotesNamesCastsEachValueAndPicksAFreeDollarQuote) {
  const std::string sql = insert_each_function("s", "odd$etl_insert_each$table", {"a", "B"}, {"integer", "date"});
  EXPECT_NE(sql.find("CREATE OR REPLACE FUNCTION pg_temp.etl_insert_each(etl_rows text[])"), std::string::npos) << sql;
  // Each value read in the columns' order, then inserted.
  EXPECT_NE(sql.find("etl_v1 := etl_rows[etl_i][1]::integer;\n      etl_v2 := etl_rows[etl_i][2]::date;\n"
                     "      INSERT INTO \"s\".\"odd$etl_insert_each$table\" (\"a\", \"B\") VALUES (etl_v1, etl_v2);"),
            std::string::npos)
      << sql;
  EXPECT_NE(sql.find("DECLARE\n  etl_v1 integer;\n  etl_v2 date;\n"), std::string::npos) << sql;
  EXPECT_NE(sql.find("AS $etl_insert_each_$\n"), std::string::npos) << sql;
  EXPECT_TRUE(sql.ends_with("\n$etl_insert_each_$")) << sql;
}

}  // namespace
}  // namespace etl::plugins::postgres
