#pragma once
// What a PostgreSQL sink writes: the table, how record fields map to columns, the write mode and
// its keys. Both sinks (postgres-row-by-row, postgres-copy) derive their Config from it and
// declare the keys they support with the functions below, so a key means the same in both and is
// described once.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "etl/sdk/config.hpp"

namespace etl::plugins::postgres {

struct WriteTarget {
  std::string schema;
  std::string table;
  std::map<std::string, std::string> columns;
  std::map<std::string, std::string> casts;
  std::string missing_field = "reject";
  std::map<std::string, std::string> defaults;
  std::map<std::string, std::string> constants;
  std::string mode = "insert";
  std::vector<std::string> conflict_columns;
  std::optional<std::vector<std::string>> update_columns;
  std::string where;
  std::vector<std::string> key_columns;
  std::string statement;
  std::map<std::string, std::string> statements;
  std::string statement_field;
  bool idempotent = false;
};

/// schema, table, columns, missing_field, defaults, constants.
template <class Config>
void declare_table_keys(sdk::ConfigMap<Config>& map, bool statement_mode_exists) {
  const char* not_statement = statement_mode_exists ? " (every mode but statement)" : "";
  map.key("schema", &WriteTarget::schema, "Schema of the table; empty: the search_path decides.");
  map.key("table", &WriteTarget::table, std::string("Table to write to") + not_statement + ".");
  map.key("columns", &WriteTarget::columns,
          std::string("Record field -> column, e.g. {\"token\": \"data\"}") +
              (statement_mode_exists ? " (every mode but statement, which names fields itself)." : "."))
      .schema(R"({"additionalProperties": {"type": "string", "minLength": 1}})");
  map.key("missing_field", &WriteTarget::missing_field,
          "A record without a mapped field (and no entry in defaults): reject it (code missing_field), or write NULL.")
      .one_of({"reject", "null"});
  map.key("defaults", &WriteTarget::defaults,
          "Record field -> the value written when a record lacks the field (as text, which PostgreSQL reads as the "
          "column's type).")
      .schema(R"({"additionalProperties": {"type": "string"}})");
  map.key("constants", &WriteTarget::constants,
          std::string("Column -> a value written in every row, e.g. {\"source\": \"goquiz\"}") +
              (statement_mode_exists ? "; in statement mode a named parameter ($source) with that value." : "."))
      .schema(R"({"additionalProperties": {"type": "string"}})");
}

/// conflict_columns, update_columns, where: upsert's keys.
template <class Config>
void declare_upsert_keys(sdk::ConfigMap<Config>& map) {
  map.key("conflict_columns", &WriteTarget::conflict_columns, "upsert: the columns of the unique constraint to meet.");
  map.key("update_columns", &WriteTarget::update_columns,
          "upsert: the columns a conflict updates (default: every mapped column but the conflict columns; [] does nothing).");
  map.key("where", &WriteTarget::where,
          "upsert: a guard on the update, in SQL over the table (by its name) and EXCLUDED, e.g. "
          "\"EXCLUDED.updated_at > customers.updated_at\" (only if newer). A row the guard keeps is ok, code unchanged.");
}

}  // namespace etl::plugins::postgres
