#pragma once
// isolate_rows: which rows of a batch are to blame when a statement over the batch fails, without
// losing the others. Pure logic over BatchSteps (the session does the SQL), tested with a fake
// in tests/batch_isolation_test.cpp.
//
// A COPY that meets one bad row fails as a whole, but the server names the row's line in the
// error's context. So, each statement inside a savepoint (a failure undoes only itself):
//   - that row is rejected with its own error,
//   - the rows before that line are loaded again (they went in a moment ago): with the first
//     piece of the rows after it when they are few, alone when they are many,
//   - the load goes on with the rows after it, in pieces sized by the density of bad rows.
// A batch with k bad rows costs about k + 1 statements plus its pieces, whatever the pattern
// of errors (the session stops sending a COPY's data once the server has answered it, so the
// rows after a bad one are not sent in vain). Statements, not rows, are what bad rows cost
// most; and of a statement, the exchange with the server: a server process that goes idle
// between two statements and is woken for the next costs about seven times what one more
// COPY in the same query costs (measured: 170 against 25 microseconds of server CPU per piece
// of 100 rows). So the pieces go as runs, several in one exchange (BatchSteps::load_run), and
// a bad row costs about one exchange. pgloader instead retries a failed batch in pieces, which
// degrades towards a statement per row when bad rows are spread through every batch.
// Errors that name no line (a translated server, a constraint checked at the statement's end,
// upsert's INSERT ... SELECT) are found by bisection: the halves in turn, recursively.
//
// Order is kept: the rows before a failure are always settled before the rows after it (a run
// stops at its first failure; the pieces after it are loaded later), so of two rows with one
// key the first is stored and the later is the one rejected.
//
// Still cheaper is a bad row that never meets the COPY. The writer guesses from the table's
// definition which rows will fail (suspect_rows.hpp); isolate_rows loads the others as above,
// then tries the suspects alone, in order, in one statement (BatchSteps::load_each). Of two rows
// with one key the later is a suspect whenever the first is, so which is stored is unchanged.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "postgres/error_kind.hpp"

namespace etl::plugins::postgres {

/// The error one statement over some rows of the batch met.
struct StepError {
  std::string sqlstate;
  std::string message;
  /// COPY: the line (1-based, among the rows of that statement) the server said failed.
  std::optional<std::size_t> line;
};

/// The statements of a batch's transaction, over rows given as indices into the batch
/// (ascending). Each runs inside a savepoint: on an error the savepoint is rolled back and the
/// error returned, and the transaction goes on. A lost connection is thrown, not returned.
/// What a load did: failed with an error, or took its first `taken` rows (all of them, unless
/// the session stopped sending early because the server had something to say).
struct LoadResult {
  std::optional<StepError> error;
  std::size_t taken = 0;
};

/// What a run of loads did (BatchSteps::load_run).
struct RunResult {
  /// The pieces, from the first, that went in whole.
  std::size_t done = 0;
  /// When done is short of the run: what the next piece did (failed, or was cut short). The
  /// pieces after it were not loaded.
  LoadResult stopped;
  /// A statement between two loads failed: nothing after the pieces done is decided.
  std::optional<StepError> batch_error;
};

/// What loading rows one at a time did (BatchSteps::load_each).
struct EachResult {
  /// Per row, in order: the error it met, or none (it went in).
  std::vector<std::optional<StepError>> errors;
  /// The statement itself failed: nothing of it is decided.
  std::optional<StepError> batch_error;
};

class BatchSteps {
 public:
  virtual ~BatchSteps() = default;
  /// insert: COPY the rows into the table. upsert: COPY them into the staging table.
  virtual LoadResult load(std::span<const std::size_t> rows) = 0;
  /// Loads pieces one after the other, each in a savepoint of its own, and stops at the first
  /// that fails or is cut short. This default asks load() for each; a session sends the whole
  /// run in one exchange with the server.
  virtual RunResult load_run(std::span<const std::vector<std::size_t>> pieces);
  /// upsert: move the rows (already loaded) from the staging table into the table.
  virtual std::optional<StepError> apply(std::span<const std::size_t> rows) = 0;
  /// insert: loads each row alone, a failure undoing only its row (the rows suspected of
  /// failing, suspect_rows.hpp). This default loads them one statement each; a session sends
  /// them all in one statement that tries each on the server.
  virtual EachResult load_each(std::span<const std::size_t> rows);
};

struct Isolation {
  /// Rows the transaction now holds (ok once it commits), ascending.
  std::vector<std::size_t> stored;
  /// Rows refused for an error of their own (data, constraint: code 22xxx/23xxx).
  std::vector<std::pair<std::size_t, StepError>> rejected;
  /// Rows that failed alone with an error of another kind (a trigger's exception).
  std::vector<std::pair<std::size_t, StepError>> failed;
  /// An error of no row's making (a deadlock, a missing table): nothing of the batch is decided
  /// and the transaction is to be rolled back.
  std::optional<StepError> batch_error;
  std::size_t statements = 0;
  /// Exchanges with the server (a run of statements is one).
  std::size_t exchanges = 0;
  /// Rows a failed statement had loaded before its bad row (undone, loaded again later).
  std::size_t rows_in_vain = 0;
  /// Suspected rows tried alone (load_each), and how many of them were refused.
  std::size_t suspects_tried = 0;
  std::size_t suspects_refused = 0;
};

namespace isolation_detail {

/// Whether an error is one a single row can cause, so that finding that row is worth it.
bool is_row_error(const StepError& error);

/// How many rows a statement takes once a batch has shown bad rows. A failed statement costs
/// the rows before the bad one twice (they are loaded again), so pieces should be short where
/// bad rows are dense; but each statement costs a fixed overhead too, about what loading
/// kStatementRows rows does. The sum of both per row, kStatementRows / n + density * n / 2, is
/// least at n = sqrt(2 * kStatementRows / density). (With pieces sent in runs, 12, 24 and 64
/// gave the same time on 1 % bad rows, within the noise: the exchanges, one per bad row, are
/// what is left to pay.)
std::size_t piece_rows(std::size_t bad_rows, std::size_t rows_tried);

/// How many pieces of `piece` rows one exchange carries once a batch has shown bad rows: twice
/// as many as are expected to go in before the next bad row (a run stops at its first failure;
/// the statements after it cost the server only their parsing), at least 2, at most 64.
std::size_t run_pieces(std::size_t bad_rows, std::size_t rows_tried, std::size_t piece);

}  // namespace isolation_detail

/// Loads `rows` (indices into the batch, ascending; and, for upsert, applies them), isolating
/// the rows that fail. insert: the `suspects` among them (ascending) are kept out of the loads
/// and tried alone after the other rows (BatchSteps::load_each).
Isolation isolate_rows(BatchSteps& steps, const std::vector<std::size_t>& rows, bool upsert,
                              const std::vector<std::size_t>& suspects = {});

}  // namespace etl::plugins::postgres
