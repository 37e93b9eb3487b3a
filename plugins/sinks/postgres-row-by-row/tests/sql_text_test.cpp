#include <gtest/gtest.h>

#include "postgres/pg_connection.hpp"
#include "sql_text.hpp"

namespace etl::plugins::postgres {
namespace {

TEST(SqlText, IdentifiersAreQuoted) {
  EXPECT_EQ(quote_identifier("data"), "\"data\"");
  EXPECT_EQ(quote_identifier("we\"ird; DROP TABLE x; --"), "\"we\"\"ird; DROP TABLE x; --\"");
}

TEST(SqlText, InsertStatementUsesPlaceholders) {
  EXPECT_EQ(insert_statement("", "secret_tokens", {"data"}),
            "INSERT INTO \"secret_tokens\" (\"data\") VALUES ($1) RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(insert_statement("etl", "t", {"a", "b"}),
            "INSERT INTO \"etl\".\"t\" (\"a\", \"b\") VALUES ($1, $2) RETURNING pg_current_xact_id()::text");
}

TEST(SqlText, LookupStatementMatchesEveryMappedColumnNullSafely) {
  EXPECT_EQ(lookup_statement("", "t;x", {"data"}),
            "SELECT xmin::text FROM \"t;x\" WHERE \"data\" IS NOT DISTINCT FROM $1");
  EXPECT_EQ(lookup_statement("s", "t", {"a", "b"}),
            "SELECT xmin::text FROM \"s\".\"t\" WHERE \"a\" IS NOT DISTINCT FROM $1 AND \"b\" IS NOT DISTINCT FROM $2");
}

TEST(SqlText, ConnectionStringQuotesEveryValue) {
  EXPECT_EQ(connection_string({{"host", "db"}, {"password", "a b'c=d\\e"}}),
            "host='db' password='a b\\'c=d\\\\e'");
}

}  // namespace
}  // namespace etl::plugins::postgres
