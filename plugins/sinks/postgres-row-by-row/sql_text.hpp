#pragma once
// Building SQL text and libpq connection strings safely.

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace etl::plugins::postgres {

/// "name" with embedded double quotes doubled: safe for any identifier from config.
inline std::string quote_identifier(std::string_view name) {
  std::string quoted = "\"";
  for (char c : name) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

/// "schema"."table", or "table" when the schema is left to the search_path.
inline std::string qualified_table(std::string_view schema, std::string_view table) {
  std::string name;
  if (!schema.empty()) {
    name += quote_identifier(schema);
    name += '.';
  }
  name += quote_identifier(table);
  return name;
}

/// INSERT INTO "schema"."table" ("a", "b") VALUES ($1, $2) RETURNING pg_current_xact_id()::text
///
/// The returned transaction id lets the sink ask the server, after a lost connection,
/// whether the row's commit happened (pg_xact_status).
inline std::string insert_statement(std::string_view schema, std::string_view table,
                                    const std::vector<std::string>& columns) {
  std::string sql = "INSERT INTO " + qualified_table(schema, table) + " (";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i != 0) sql += ", ";
    sql += quote_identifier(columns[i]);
  }
  sql += ") VALUES (";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i != 0) sql += ", ";
    sql += "$" + std::to_string(i + 1);
  }
  sql += ") RETURNING pg_current_xact_id()::text";
  return sql;
}

/// SELECT xmin::text FROM "schema"."table" WHERE "a" IS NOT DISTINCT FROM $1 AND ...
///
/// Finds the stored copies of a row by the values that were sent, with the inserting
/// transaction of each: how the sink decides a row whose answer was lost with its connection.
inline std::string lookup_statement(std::string_view schema, std::string_view table,
                                    const std::vector<std::string>& columns) {
  std::string sql = "SELECT xmin::text FROM " + qualified_table(schema, table) + " WHERE ";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i != 0) sql += " AND ";
    sql += quote_identifier(columns[i]) + " IS NOT DISTINCT FROM $" + std::to_string(i + 1);
  }
  return sql;
}

}  // namespace etl::plugins::postgres
