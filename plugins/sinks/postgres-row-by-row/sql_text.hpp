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

/// INSERT INTO "schema"."table" ("a", "b") VALUES ($1, $2)
inline std::string insert_statement(std::string_view schema, std::string_view table,
                                    const std::vector<std::string>& columns) {
  std::string sql = "INSERT INTO ";
  if (!schema.empty()) {
    sql += quote_identifier(schema);
    sql += '.';
  }
  sql += quote_identifier(table);
  sql += " (";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i != 0) sql += ", ";
    sql += quote_identifier(columns[i]);
  }
  sql += ") VALUES (";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i != 0) sql += ", ";
    sql += "$" + std::to_string(i + 1);
  }
  sql += ")";
  return sql;
}

/// A libpq conninfo string: each value single-quoted, with \ and ' escaped, so passwords with
/// spaces, quotes or '=' survive intact.
inline std::string connection_string(const std::map<std::string, std::string>& parameters) {
  std::string conninfo;
  for (const auto& [key, value] : parameters) {
    if (!conninfo.empty()) conninfo += ' ';
    conninfo += key;
    conninfo += "='";
    for (char c : value) {
      if (c == '\\' || c == '\'') conninfo += '\\';
      conninfo += c;
    }
    conninfo += '\'';
  }
  return conninfo;
}

}  // namespace etl::plugins::postgres
