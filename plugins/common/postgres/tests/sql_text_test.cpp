#include <gtest/gtest.h>

#include "postgres/connection.hpp"
#include "postgres/sql_text.hpp"

namespace etl::plugins::postgres {
namespace {

TEST(SqlText, IdentifiersAreQuoted) {
  EXPECT_EQ(quote_identifier("data"), "\"data\"");
  EXPECT_EQ(quote_identifier("we\"ird; DROP TABLE x; --"), "\"we\"\"ird; DROP TABLE x; --\"");
}

TEST(SqlText, InsertStatementUsesPlaceholders) {
  const auto one = write_statement(WriteMode::insert, "", "secret_tokens", {"data"}, {});
  EXPECT_EQ(one.sql, "INSERT INTO \"secret_tokens\" (\"data\") VALUES ($1) RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(one.parameters, (std::vector<std::size_t>{0}));
  EXPECT_EQ(write_statement(WriteMode::insert, "etl", "t", {"a", "b"}, {}).sql,
            "INSERT INTO \"etl\".\"t\" (\"a\", \"b\") VALUES ($1, $2) RETURNING pg_current_xact_id()::text");
}

TEST(SqlText, UpsertUpdatesTheOtherColumnsUnderAnOptionalGuard) {
  const auto upsert = write_statement(WriteMode::upsert, "", "customers", {"id", "name", "updated"}, {"id"},
                                      {"name", "updated"}, "EXCLUDED.updated > customers.updated");
  EXPECT_EQ(upsert.sql,
            "INSERT INTO \"customers\" (\"id\", \"name\", \"updated\") VALUES ($1, $2, $3) ON CONFLICT (\"id\") "
            "DO UPDATE SET \"name\" = EXCLUDED.\"name\", \"updated\" = EXCLUDED.\"updated\" "
            "WHERE EXCLUDED.updated > customers.updated RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(upsert.parameters, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(write_statement(WriteMode::upsert, "", "t", {"id"}, {"id"}, {}).sql,
            "INSERT INTO \"t\" (\"id\") VALUES ($1) ON CONFLICT (\"id\") DO NOTHING RETURNING pg_current_xact_id()::text");
}

TEST(SqlText, UpdateAndDeleteFindTheRowByItsKey) {
  const auto update = write_statement(WriteMode::update, "s", "t", {"a", "id", "b"}, {"id"});
  EXPECT_EQ(update.sql, "UPDATE \"s\".\"t\" SET \"a\" = $1, \"b\" = $2 WHERE \"id\" = $3 RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(update.parameters, (std::vector<std::size_t>{0, 2, 1}));
  const auto remove = write_statement(WriteMode::remove, "", "t", {"a", "k1", "k2"}, {"k1", "k2"});
  EXPECT_EQ(remove.sql, "DELETE FROM \"t\" WHERE \"k1\" = $1 AND \"k2\" = $2 RETURNING pg_current_xact_id()::text");
  EXPECT_EQ(remove.parameters, (std::vector<std::size_t>{1, 2}));
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
