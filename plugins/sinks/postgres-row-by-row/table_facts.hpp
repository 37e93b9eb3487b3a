#pragma once
// What commit: batch reads of the table's definition for guessing which rows the server will
// refuse (suspect_rows.hpp): the mapped columns' types, NOT NULL, simple CHECKs and unique
// keys. facts_from_catalog() is pure (tested in tests/suspect_rows_test.cpp); read_table_facts()
// asks the catalog over a live session.

#include <libpq-fe.h>

#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "pg_session.hpp"
#include "sql_text.hpp"
#include "suspect_rows.hpp"

namespace etl::plugins::postgres {

/// A column as pg_attribute and pg_type give it.
struct CatalogColumn {
  std::string name;
  std::string type_name;  // pg_type.typname of the column's type (a domain's own name)
  char type_type = 'b';   // pg_type.typtype: 'd' for a domain
  bool not_null = false;
  int typmod = -1;
  std::string sql_type;  // format_type(atttypid, NULL)
};

/// A unique index: its columns' attribute names, in order.
struct CatalogKey {
  std::vector<std::string> columns;
  bool nulls_equal = false;
};

struct CatalogFacts {
  TableFacts facts;
  /// The mapped columns' SQL types, for pg_temp.etl_insert_each's casts.
  std::vector<std::string> sql_types;
};

/// Facts over the `mapped` columns (in their order); nullopt when a mapped column is not in
/// `columns` (the table check at open names that error).
inline std::optional<CatalogFacts> facts_from_catalog(const std::vector<CatalogColumn>& columns, const std::vector<CatalogKey>& keys,
                                                      const std::vector<std::string>& check_definitions,
                                                      const std::vector<std::string>& mapped) {
  CatalogFacts out;
  auto index_of = [&](const std::string& name) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < mapped.size(); ++i) {
      if (mapped[i] == name) return i;
    }
    return std::nullopt;
  };
  for (const auto& name : mapped) {
    const CatalogColumn* found = nullptr;
    for (const auto& column : columns) {
      if (column.name == name) found = &column;
    }
    if (found == nullptr) return std::nullopt;
    ColumnFacts facts;
    facts.not_null = found->not_null;
    const std::string& type = found->type_name;
    if (found->type_type == 'd') {
      facts.kind = ValueKind::any;  // a domain's own checks are not guessed
    } else if (type == "int2") {
      facts.kind = ValueKind::int16;
    } else if (type == "int4") {
      facts.kind = ValueKind::int32;
    } else if (type == "int8") {
      facts.kind = ValueKind::int64;
    } else if (type == "numeric") {
      facts.kind = ValueKind::decimal;
      if (found->typmod >= 4) {
        const int precision = ((found->typmod - 4) >> 16) & 0xffff;
        const int scale = static_cast<short>((found->typmod - 4) & 0xffff);
        // (p = s, or a negative scale: not guessed)
        if (precision > scale && scale >= 0) {
          facts.limit = static_cast<std::size_t>(precision - scale);
        } else {
          facts.kind = ValueKind::any;
        }
      }
    } else if (type == "float4" || type == "float8") {
      facts.kind = ValueKind::decimal;
    } else if (type == "date") {
      facts.kind = ValueKind::date;
    } else if (type == "bool") {
      facts.kind = ValueKind::boolean;
    } else if ((type == "varchar" || type == "bpchar") && found->typmod >= 4) {
      facts.kind = ValueKind::text;
      facts.limit = static_cast<std::size_t>(found->typmod - 4);
    }
    out.facts.columns.push_back(facts);
    out.sql_types.push_back(found->sql_type);
  }
  for (const auto& definition : check_definitions) {
    std::optional<SimpleCheck> check = parse_simple_check(definition, mapped);
    if (!check) continue;
    const ValueKind kind = out.facts.columns[check->column].kind;
    const bool numeric = kind == ValueKind::int16 || kind == ValueKind::int32 || kind == ValueKind::int64 || kind == ValueKind::decimal;
    if (numeric) out.facts.checks.push_back(*check);
  }
  for (const auto& key : keys) {
    std::vector<std::size_t> indices;
    for (const auto& name : key.columns) {
      if (const auto index = index_of(name)) indices.push_back(*index);
    }
    if (indices.size() != key.columns.size() || indices.empty()) continue;  // a column not mapped: defaults decide
    out.facts.unique_keys.push_back(std::move(indices));
    out.facts.nulls_equal.push_back(key.nulls_equal);
  }
  return out;
}

/// Reads the facts of `schema`.`table` over `session`; nullopt (with `error` set) when the
/// catalog cannot be read.
inline std::optional<CatalogFacts> read_table_facts(PgSession& session, const std::string& schema, const std::string& table,
                                                    const std::vector<std::string>& mapped, std::string& error) {
  const std::string relation = qualified_table(schema, table);
  auto failed = [&](const PgResult& result) {
    error = error_field(result.get(), PG_DIAG_MESSAGE_PRIMARY);
    return std::nullopt;
  };
  PgResult columns = session.execute(
      "SELECT a.attname, t.typname, t.typtype, a.attnotnull, a.atttypmod, format_type(a.atttypid, NULL) FROM pg_attribute a"
      " JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped",
      {relation.c_str()});
  if (PQresultStatus(columns.get()) != PGRES_TUPLES_OK) return failed(columns);
  std::vector<CatalogColumn> catalog_columns;
  for (int i = 0; i < PQntuples(columns.get()); ++i) {
    CatalogColumn column;
    column.name = PQgetvalue(columns.get(), i, 0);
    column.type_name = PQgetvalue(columns.get(), i, 1);
    column.type_type = *PQgetvalue(columns.get(), i, 2);
    column.not_null = *PQgetvalue(columns.get(), i, 3) == 't';
    column.typmod = std::atoi(PQgetvalue(columns.get(), i, 4));
    column.sql_type = PQgetvalue(columns.get(), i, 5);
    catalog_columns.push_back(std::move(column));
  }
  // Unique indexes over plain columns, without a predicate (a partial index's uniqueness holds
  // only where the predicate does).
  const bool has_nulls_not_distinct = PQserverVersion(session.get()) >= 150000;
  const std::string key_sql =
      std::string("SELECT array_to_string(ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(num, ord)"
                  " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord), E'\\t'), ") +
      (has_nulls_not_distinct ? "i.indnullsnotdistinct" : "false") +
      " FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL";
  PgResult keys = session.execute(key_sql.c_str(), {relation.c_str()});
  if (PQresultStatus(keys.get()) != PGRES_TUPLES_OK) return failed(keys);
  std::vector<CatalogKey> catalog_keys;
  for (int i = 0; i < PQntuples(keys.get()); ++i) {
    CatalogKey key;
    std::istringstream names(PQgetvalue(keys.get(), i, 0));
    for (std::string name; std::getline(names, name, '\t');) key.columns.push_back(name);
    key.nulls_equal = *PQgetvalue(keys.get(), i, 1) == 't';
    catalog_keys.push_back(std::move(key));
  }
  PgResult checks = session.execute(
      "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'c'", {relation.c_str()});
  if (PQresultStatus(checks.get()) != PGRES_TUPLES_OK) return failed(checks);
  std::vector<std::string> definitions;
  for (int i = 0; i < PQntuples(checks.get()); ++i) definitions.emplace_back(PQgetvalue(checks.get(), i, 0));
  std::optional<CatalogFacts> facts = facts_from_catalog(catalog_columns, catalog_keys, definitions, mapped);
  if (!facts) error = "a mapped column is not in the table";
  return facts;
}

}  // namespace etl::plugins::postgres
