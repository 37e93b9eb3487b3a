#pragma once
// What a sink knows of its table's definition: the mapped columns' types, NOT NULL, simple
// CHECKs and unique keys (postgres-copy guesses from them which rows the server will refuse).
// Pure: facts_from_catalog() turns catalog rows into facts (tested in tests/table_facts_test.cpp);
// table_catalog.hpp reads those rows over a live session.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace etl::plugins::postgres {

/// How a mapped column's values are checked (TableFacts gives one per mapped column).
enum class ValueKind { any, int16, int32, int64, decimal, date, boolean, text };

struct ColumnFacts {
  ValueKind kind = ValueKind::any;
  bool not_null = false;
  /// text: the most characters it holds (varchar(n), char(n)); decimal: the most digits before
  /// the point (numeric(p, s): p - s). 0: no limit.
  std::size_t limit = 0;
};

/// A CHECK of the form `column <op> number`, over a mapped column.
struct SimpleCheck {
  std::size_t column = 0;  // index among the mapped columns
  std::string op;          // one of < <= > >= = <>
  double bound = 0;
};

/// What SuspectRows knows of the table, in the order of the mapped columns.
struct TableFacts {
  std::vector<ColumnFacts> columns;
  std::vector<SimpleCheck> checks;
  /// Unique keys whose columns are all mapped: indices among the mapped columns.
  std::vector<std::vector<std::size_t>> unique_keys;
  /// Unique keys that treat NULLs as equal (PostgreSQL 15's NULLS NOT DISTINCT), by index.
  std::vector<bool> nulls_equal;
};

/// Parses `pg_get_constraintdef` of a CHECK constraint into a SimpleCheck over `columns` (the
/// mapped columns), when it has the form `column <op> number`, e.g. `CHECK ((amount >= (0)::numeric))`.
std::optional<SimpleCheck> parse_simple_check(const std::string& definition, const std::vector<std::string>& columns);


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
std::optional<CatalogFacts> facts_from_catalog(const std::vector<CatalogColumn>& columns, const std::vector<CatalogKey>& keys,
                                                      const std::vector<std::string>& check_definitions,
                                                      const std::vector<std::string>& mapped);

}  // namespace etl::plugins::postgres
