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
std::string qualified_table(std::string_view schema, std::string_view table);

/// How the sink writes a row: each mode is still one transaction per record.
enum class WriteMode { insert, upsert, update, remove, statement, changes };

/// A write statement and, for each of its parameters ($1, $2, ...), the index of the mapped
/// column whose value it takes.
struct WriteStatement {
  std::string sql;
  std::vector<std::size_t> parameters;
};

/// The statement of `mode` over the mapped `columns`:
///  - insert: INSERT ... VALUES (...)
///  - upsert: INSERT ... ON CONFLICT (keys) DO UPDATE SET u = EXCLUDED.u, ... [WHERE guard]
///    (DO NOTHING when there is nothing to update)
///  - update: UPDATE ... SET others = $i WHERE keys = $j
///  - remove: DELETE FROM ... WHERE keys = $j
/// `casts`, when given, holds per column a SQL type its parameter is cast to ("" for none).
/// Every one returns the transaction id (after a lost connection the sink asks the server,
/// with pg_xact_status, whether an insert's commit happened), and a row only when it touched one: none means the key
/// was not found (update, remove) or the guard kept the stored row (upsert). `keys` and
/// `update_columns` must name mapped columns (the caller checks).
WriteStatement write_statement(WriteMode mode, std::string_view schema, std::string_view table,
                                      const std::vector<std::string>& columns, const std::vector<std::string>& keys,
                                      const std::vector<std::string>& update_columns = {}, std::string_view guard = {},
                                      const std::vector<std::string>& casts = {});

/// changes mode: the statements that apply change records (postgres-cdc's) to a table keyed by
/// `keys`. The mapped columns are sources 0..n-1 (`fields[i]` is the record field of
/// `columns[i]`); source `unchanged` carries the record's _unchanged list (a JSON array of field
/// names), and `old_keys[k]` the old value of keys[k] (from _old when the update changed the key,
/// else the new value). Every statement returns the transaction id when it touched a row.
struct ChangeStatements {
  /// insert, read, and an update that neither moved the key nor left columns unchanged: an upsert.
  WriteStatement upsert;
  /// An update with unchanged (unsent TOAST) columns: UPDATE the row found by its old or new key,
  /// keeping each unchanged column's stored value; no row is "not found" (the values it lacks
  /// are nowhere to be had).
  WriteStatement update_keeping;
  /// An update that moved the key: the row at the old key deleted, the new row upserted.
  WriteStatement move;
  /// A delete, by key.
  WriteStatement remove;
  /// A truncate of the source table: TRUNCATE the target.
  WriteStatement truncate;
};
ChangeStatements change_statements(std::string_view schema, std::string_view table, const std::vector<std::string>& columns,
                                   const std::vector<std::string>& fields, const std::vector<std::string>& keys,
                                   std::size_t unchanged, const std::vector<std::size_t>& old_keys,
                                   const std::vector<std::string>& casts);

/// The quoted, comma-separated column list: "a", "b".
std::string column_list(const std::vector<std::string>& columns, std::string_view prefix = {});

/// commit: batch. The staging table upsert loads into first, one per session, emptied at every
/// commit; its last column numbers the rows of the batch.
inline constexpr std::string_view kStageTable = "etl_stage";
inline constexpr std::string_view kStageOrdinal = "etl_ord";

/// COPY "schema"."table" ("a", "b") FROM STDIN: insert's load, or (`stage`) upsert's.
std::string copy_statement(std::string_view schema, std::string_view table, const std::vector<std::string>& columns,
                                  bool stage = false);

/// Creates the session's staging table with the mapped columns' types (no constraints: those
/// are met when the rows move into the table).
std::string create_stage_statement(std::string_view schema, std::string_view table,
                                          const std::vector<std::string>& columns);

/// upsert, commit: batch. Moves the staged rows numbered first..last into the table in one
/// statement. Of rows with one key only one can go in one statement: the last (it would have
/// overwritten the others), or with nothing to update the first (the others would have done
/// nothing).
std::string stage_upsert_statement(std::string_view schema, std::string_view table,
                                          const std::vector<std::string>& columns, const std::vector<std::string>& keys,
                                          const std::vector<std::string>& update_columns, std::string_view guard,
                                          std::size_t first, std::size_t last);

/// commit: batch (insert). The session's function that inserts rows one at a time, each in a
/// subtransaction of its own, and returns the rows that failed with their SQLSTATE and message:
/// the batch's suspected rows (suspect_rows.hpp) in one statement, however many fail. Its
/// argument is a two-dimensional text[] (a row per row, a value per mapped column); `types`
/// are the columns' types as format_type(atttypid, NULL) gives them. Each value goes through its
/// type's input function, in the order of the columns (as COPY reads them: of two bad values
/// the first one's error is the row's), before the INSERT applies typmods (which refuses what
/// does not fit, where a cast to varchar(n) would cut it) and constraints.
inline constexpr const char* kInsertEachCall = "SELECT etl_row, etl_code, etl_message FROM pg_temp.etl_insert_each($1::text[])";

std::string insert_each_function(std::string_view schema, std::string_view table, const std::vector<std::string>& columns,
                                        const std::vector<std::string>& types);

/// SELECT xmin::text FROM "schema"."table" WHERE "a" IS NOT DISTINCT FROM $1 AND ...
///
/// Finds the stored copies of a row by the values that were sent, with the inserting
/// transaction of each: how the sink decides a row whose answer was lost with its connection.
std::string lookup_statement(std::string_view schema, std::string_view table,
                                    const std::vector<std::string>& columns, const std::vector<std::string>& casts = {});

}  // namespace etl::plugins::postgres
