// Named parameters become positional ones, outside quotes and comments only; values typed by
// their column's type.
#include <gtest/gtest.h>

#include "postgres/named_parameters.hpp"
#include "postgres/values.hpp"

namespace etl::plugins::postgres {
namespace {

TEST(NamedParameters, NamesBecomePositionsInOrderOfFirstUse) {
  const auto s = parse_named_parameters("SELECT a FROM t WHERE x = $user AND y > $since AND z = $user::int");
  EXPECT_EQ(s.sql, "SELECT a FROM t WHERE x = $1 AND y > $2 AND z = $1::int");
  EXPECT_EQ(s.fields, (std::vector<std::string>{"user", "since"}));
}

TEST(NamedParameters, QuotesCommentsAndDollarQuotesAreLeftAlone) {
  const auto s = parse_named_parameters(
      "SELECT '$not', \"$col\", $$ $body $$, $tag$ $x $tag$ -- $comment\n/* $also */ FROM t WHERE k = $key");
  EXPECT_EQ(s.sql, "SELECT '$not', \"$col\", $$ $body $$, $tag$ $x $tag$ -- $comment\n/* $also */ FROM t WHERE k = $1");
  EXPECT_EQ(s.fields, (std::vector<std::string>{"key"}));
}

TEST(NamedParameters, MistakesAreNamed) {
  EXPECT_THROW(parse_named_parameters("SELECT 'open"), std::invalid_argument);
  EXPECT_THROW(parse_named_parameters("SELECT /* open"), std::invalid_argument);
  EXPECT_THROW(parse_named_parameters("SELECT $1"), std::invalid_argument);
  EXPECT_THROW(parse_named_parameters("SELECT $q$ open"), std::invalid_argument);
}

TEST(PgValues, ColumnTypesGiveTypedValues) {
  EXPECT_EQ(value_from_text(kInt4Oid, "42"), sdk::Value(std::int64_t{42}));
  EXPECT_EQ(value_from_text(kBoolOid, "t"), sdk::Value(true));
  EXPECT_EQ(value_from_text(kFloat8Oid, "2.5"), sdk::Value(2.5));
  EXPECT_EQ(value_from_text(kJsonbOid, R"({"a": 1})").type(), sdk::ValueType::json);
  EXPECT_EQ(value_from_text(kByteaOid, "\\x00ff"), sdk::Value::bytes(std::string("\x00\xff", 2)));
  EXPECT_EQ(value_from_text(1700, "12.3400"), sdk::Value("12.3400"));  // numeric keeps its exact text
  EXPECT_EQ(value_from_text(1082, "2024-02-29"), sdk::Value("2024-02-29"));
}

}  // namespace
}  // namespace etl::plugins::postgres
