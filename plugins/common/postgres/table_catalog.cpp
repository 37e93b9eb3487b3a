#include "postgres/table_catalog.hpp"

#include <cstdlib>
#include <sstream>

#include "postgres/sql_text.hpp"

namespace etl::plugins::postgres {

std::optional<CatalogFacts> read_table_facts(PgSession& session, const std::string& schema, const std::string& table,
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
