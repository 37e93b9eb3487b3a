#pragma once
// RowPlan: what the sink writes for a record, decided from the config alone (no I/O): the
// statements of the mode, which record field (or constant, or default) feeds each parameter,
// the key that keeps a key's writes in order, and the per-record refusals (a missing field,
// a NUL byte, a statement_field value with no statement).

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "etl/sdk.hpp"
#include "postgres/named_parameters.hpp"
#include "postgres/write_target.hpp"
#include "postgres/copy_text.hpp"
#include "postgres/sql_text.hpp"

namespace etl::plugins::postgres {

/// A record as the sink carries it: the parameter values as text (NULL as nullopt).
struct Row {
  std::uint64_t sequence = 0;
  std::vector<std::optional<std::string>> values;
  int attempts = 0;             // tries that ended in a retryable error (serialization, deadlock, resources)
  bool replayed = false;        // sent again after its connection was lost (idempotent modes)
  std::uint16_t statement = 0;  // which of the plan's statements writes it
  /// Hash of the key columns' values (all values when there is no key): rows with equal
  /// hashes are never undecided on two connections at once (see Dispatcher).
  std::size_t key_hash = 0;
  /// insert mode: a stored copy with a lower transaction id belongs to an equal row decided
  /// before this one was sent (see EqualRowFloors).
  std::uint64_t xid_floor = 0;
  /// Waits for every row held before it to be decided, and holds back the rows after it until
  /// it is (changes mode: a truncate is ordered against every key's changes).
  bool barrier = false;
};

class RowPlan {
 public:
  /// Throws sdk::ConfigError naming the key when the config does not make a plan.
  explicit RowPlan(const WriteTarget& config);

  WriteMode mode() const { return mode_; }
  bool idempotent() const { return idempotent_; }
  const std::vector<WriteStatement>& statements() const { return statements_; }
  const std::vector<std::string>& columns() const { return columns_; }
  const std::string& table() const { return table_; }
  const std::string& schema() const { return schema_; }
  /// upsert: the conflict columns, the columns a conflict updates, and the guard on the update.
  const std::vector<std::string>& conflict_columns() const { return conflict_columns_; }
  const std::vector<std::string>& update_columns() const { return update_columns_; }
  const std::string& guard() const { return guard_; }
  /// Finds the stored copies of a row by its values (insert mode's lookup after a lost connection).
  std::string lookup_sql() const { return lookup_statement(schema_, table_, columns_, casts_); }

  /// Fills `row` from `record`; or returns the `rejected` outcome the record gets instead.
  std::optional<sdk::Outcome> fill(const sdk::Record& record, Row& row) const;

  /// commit: batch (insert, upsert). Appends the record's row as a line of COPY text (with
  /// `ordinal` as a last column when given), straight from its fields; or returns the refusal,
  /// `out` then unchanged.
  std::optional<sdk::Outcome> append_copy_line(const sdk::Record& record, std::string& out,
                                               std::optional<std::size_t> ordinal = std::nullopt) const;

  /// How the answer to `statement` reads, as the answer of a table mode's statement: a changes
  /// mode's upserts as upsert, its update as update (no row: not_found), its delete and
  /// truncate as delete (no row: absent, see absent_is_ok). Other modes: mode().
  WriteMode answer_mode(std::size_t statement) const;
  /// A delete of `statement` that finds no row is ok, code absent (changes mode: the row was
  /// never replicated, or an earlier try removed it).
  bool absent_is_ok(std::size_t statement) const { return mode_ == WriteMode::changes && statement >= kChangeRemove; }

  /// The row's values in the order of its statement's parameters, as libpq takes them.
  std::vector<const char*> parameters(const Row& row) const;

  /// The row's values in column order (the lookup statement's parameters).
  static std::vector<const char*> column_values(const Row& row);

 private:
  /// Where a column's (or named parameter's) value comes from.
  struct Source {
    std::string field;                      // the record's field ("" for a constant)
    std::optional<std::string> constant;    // the same value in every row
    std::optional<std::string> fallback;    // the value when the record lacks the field (defaults)
    std::size_t key_of = 0;                 // changes mode, an old key's value: 1 + the key's source
  };

  // changes mode: its statements, in this order (see ChangeStatements).
  static constexpr std::size_t kChangeUpsert = 0, kChangeUpdateKeeping = 1, kChangeMove = 2, kChangeRemove = 3,
                               kChangeTruncate = 4;

  /// changes mode: the statements of change records (see change_statements()).
  void plan_changes(const WriteTarget& config);
  std::optional<sdk::Outcome> fill_change(const sdk::Record& record, Row& row) const;

  /// The value source `i` gives `record`: `text` points at its text form (nullptr for NULL),
  /// valid while `record`, the plan and `scratch` are; or the refusal. A string's (or JSON's)
  /// text is the field's own, other types' is made in `scratch`.
  std::optional<sdk::Outcome> value_text(const sdk::Record& record, std::size_t i, bool needed, std::string& scratch,
                                         const std::string*& text) const;

  Source& add_column(const std::string& field, const std::string& column, const WriteTarget& config);

  std::size_t key_hash(const Row& row) const;

  /// statement mode: the user's statements, their named parameters turned into positions over
  /// one list of sources, which is what a row carries.
  void plan_user_statements(const WriteTarget& config);

  /// The statement of a table mode; its keys must be mapped columns.
  void plan_statement(const WriteTarget& config);

  std::string schema_;
  std::string table_;
  bool missing_is_null_ = false;
  std::vector<std::string> columns_;  // per source: its column (statement mode: its parameter name)
  std::vector<std::string> casts_;    // per source: "" or the SQL type of its parameter
  std::vector<Source> sources_;
  WriteMode mode_ = WriteMode::insert;
  bool idempotent_ = false;
  std::vector<WriteStatement> statements_;
  std::map<std::string, std::size_t> statement_for_value_;  // statement mode, by statement_field
  std::string statement_field_;
  std::vector<std::string> conflict_columns_;  // upsert
  std::vector<std::string> update_columns_;    // upsert
  std::string guard_;                          // upsert
  std::vector<std::size_t> key_indices_;  // into columns_: the key (empty: all values)
  std::vector<std::vector<bool>> needed_;  // per statement, per source: bound by it
  std::size_t mapped_ = 0;                 // changes mode: sources before the hidden ones
  std::size_t unchanged_source_ = 0;       // changes mode: the _unchanged list's source
};

}  // namespace etl::plugins::postgres
