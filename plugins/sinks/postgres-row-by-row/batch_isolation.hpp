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

#include "error_kind.hpp"

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

/// A run as one statement after another: `load` each piece (returning its LoadResult) until
/// one fails or is cut short.
template <class Load>
RunResult one_at_a_time(std::span<const std::vector<std::size_t>> pieces, Load&& load) {
  RunResult out;
  for (const auto& piece : pieces) {
    LoadResult result = load(piece);
    if (result.error || result.taken < piece.size()) {
      out.stopped = std::move(result);
      return out;
    }
    ++out.done;
  }
  return out;
}

inline RunResult BatchSteps::load_run(std::span<const std::vector<std::size_t>> pieces) {
  return one_at_a_time(pieces, [this](const std::vector<std::size_t>& piece) { return load(piece); });
}

inline EachResult BatchSteps::load_each(std::span<const std::size_t> rows) {
  EachResult out;
  for (const auto row : rows) {
    const std::size_t one[] = {row};
    LoadResult result = load(one);
    if (!result.error && result.taken != 1) {
      out.batch_error = StepError{"XX000", "a COPY of one row took none of it", {}};
      return out;
    }
    out.errors.push_back(std::move(result.error));
  }
  return out;
}

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
inline bool is_row_error(const StepError& error) {
  const ErrorKind kind = classify_sqlstate(error.sqlstate);
  // 21000: ON CONFLICT DO UPDATE met one key twice in one statement; separating them cures it.
  return kind == ErrorKind::row || kind == ErrorKind::other || error.sqlstate == "21000";
}

/// How many rows a statement takes once a batch has shown bad rows. A failed statement costs
/// the rows before the bad one twice (they are loaded again), so pieces should be short where
/// bad rows are dense; but each statement costs a fixed overhead too, about what loading
/// kStatementRows rows does. The sum of both per row, kStatementRows / n + density * n / 2, is
/// least at n = sqrt(2 * kStatementRows / density). (With pieces sent in runs, 12, 24 and 64
/// gave the same time on 1 % bad rows, within the noise: the exchanges, one per bad row, are
/// what is left to pay.)
inline std::size_t piece_rows(std::size_t bad_rows, std::size_t rows_tried) {
  constexpr double kStatementRows = 64;
  const double density = static_cast<double>(bad_rows) / static_cast<double>(std::max<std::size_t>(rows_tried, 1));
  const double best = std::sqrt(2 * kStatementRows / std::max(density, 1e-9));
  return static_cast<std::size_t>(std::clamp(best, 16.0, 1e9));
}

/// How many pieces of `piece` rows one exchange carries once a batch has shown bad rows: twice
/// as many as are expected to go in before the next bad row (a run stops at its first failure;
/// the statements after it cost the server only their parsing), at least 2, at most 64.
inline std::size_t run_pieces(std::size_t bad_rows, std::size_t rows_tried, std::size_t piece) {
  const double density = static_cast<double>(bad_rows) / static_cast<double>(std::max<std::size_t>(rows_tried, 1));
  const double expected = 1.0 / std::max(density * static_cast<double>(std::max<std::size_t>(piece, 1)), 1e-9);
  return static_cast<std::size_t>(std::clamp(std::ceil(2 * expected), 2.0, 64.0));
}

/// Loads `rows` through `run` (a BatchSteps::load_run), isolating the rows that fail; the rows
/// that went in are appended to `passed`, in order. False when a batch error ended it.
template <class Run>
bool run_step(Run&& run, const std::vector<std::size_t>& rows, Isolation& out, std::vector<std::size_t>& passed) {
  std::vector<std::vector<std::size_t>> todo;  // a stack: the back is next
  std::size_t bad_rows = 0, rows_tried = 0;     // found by line so far, and the rows that took
  todo.push_back(rows);
  std::vector<std::vector<std::size_t>> pieces;  // the run in hand
  while (!todo.empty()) {
    // Until a line has shown how dense bad rows are, one statement at a time (the whole batch
    // first; bisection's halves).
    const std::size_t wanted = bad_rows == 0 ? 1 : run_pieces(bad_rows, rows_tried, piece_rows(bad_rows, rows_tried));
    pieces.clear();
    while (!todo.empty() && pieces.size() < wanted) {
      if (!todo.back().empty()) pieces.push_back(std::move(todo.back()));
      todo.pop_back();
    }
    if (pieces.empty()) break;
    ++out.exchanges;
    RunResult result = run(std::span<const std::vector<std::size_t>>(pieces));
    const std::size_t done = std::min(result.done, pieces.size());
    for (std::size_t i = 0; i < done; ++i) {
      ++out.statements;
      rows_tried += pieces[i].size();
      passed.insert(passed.end(), pieces[i].begin(), pieces[i].end());
    }
    if (result.batch_error) {
      out.batch_error = std::move(result.batch_error);
      return false;
    }
    if (done == pieces.size()) continue;
    // The pieces after the one that stopped the run were not loaded: back on the stack, in order.
    for (std::size_t i = pieces.size(); i-- > done + 1;) todo.push_back(std::move(pieces[i]));
    std::vector<std::size_t> part = std::move(pieces[done]);
    ++out.statements;
    if (!result.stopped.error) {
      const std::size_t taken = std::min(result.stopped.taken, part.size());
      rows_tried += taken;
      passed.insert(passed.end(), part.begin(), part.begin() + static_cast<std::ptrdiff_t>(taken));
      // Cut short: the rest is a statement of its own. (A COPY that took nothing and said
      // nothing is not to be asked again with the same rows: that would never end.)
      if (taken == 0) {
        out.batch_error = StepError{"XX000", "a COPY of " + std::to_string(part.size()) + " rows took none of them", {}};
        return false;
      }
      todo.emplace_back(part.begin() + static_cast<std::ptrdiff_t>(taken), part.end());
      continue;
    }
    std::optional<StepError>& error = result.stopped.error;
    if (!is_row_error(*error)) {
      out.batch_error = std::move(error);
      return false;
    }
    auto settle_alone = [&](std::size_t row) {
      const bool refused = classify_sqlstate(error->sqlstate) == ErrorKind::row;
      (refused ? out.rejected : out.failed).emplace_back(row, *error);
    };
    if (error->line && *error->line >= 1 && *error->line <= part.size()) {
      const std::size_t bad = *error->line - 1;
      settle_alone(part[bad]);
      ++bad_rows;
      rows_tried += bad + 1;
      out.rows_in_vain += bad;
      // The rows after it in pieces (see piece_rows), processed after the rows before it. Few
      // rows before it ride with the first piece (a statement saved; should that piece fail
      // too, they are loaded in vain once more); many go alone.
      const std::size_t piece = piece_rows(bad_rows, rows_tried);
      const auto before_end = part.begin() + static_cast<std::ptrdiff_t>(bad);
      std::vector<std::vector<std::size_t>> split;
      if (bad > piece) split.emplace_back(part.begin(), before_end);
      for (auto at = before_end + 1; at < part.end();) {
        const auto end = part.end() - at > static_cast<std::ptrdiff_t>(piece) ? at + static_cast<std::ptrdiff_t>(piece) : part.end();
        split.emplace_back(at, end);
        at = end;
      }
      if (bad > 0 && bad <= piece) {
        if (split.empty()) split.emplace_back();  // nothing after the bad row
        split.front().insert(split.front().begin(), part.begin(), before_end);
      }
      for (auto it = split.rbegin(); it != split.rend(); ++it) todo.push_back(std::move(*it));
    } else if (part.size() == 1) {
      settle_alone(part.front());
    } else {
      out.rows_in_vain += part.size();  // at most: the server did not say where it stopped
      const auto middle = part.begin() + static_cast<std::ptrdiff_t>(part.size() / 2);
      todo.emplace_back(middle, part.end());
      todo.emplace_back(part.begin(), middle);
    }
  }
  return true;
}

}  // namespace isolation_detail

/// Loads `rows` (indices into the batch, ascending; and, for upsert, applies them), isolating
/// the rows that fail. insert: the `suspects` among them (ascending) are kept out of the loads
/// and tried alone after the other rows (BatchSteps::load_each).
inline Isolation isolate_rows(BatchSteps& steps, const std::vector<std::size_t>& rows, bool upsert,
                              const std::vector<std::size_t>& suspects = {}) {
  Isolation out;
  std::vector<std::size_t> suspected;
  std::vector<std::size_t> others;  // the rows less the suspects (only built when there are some)
  if (!upsert && !suspects.empty()) {
    std::set_intersection(rows.begin(), rows.end(), suspects.begin(), suspects.end(), std::back_inserter(suspected));
    others.reserve(rows.size() - suspected.size());
    std::set_difference(rows.begin(), rows.end(), suspected.begin(), suspected.end(), std::back_inserter(others));
  }
  const std::vector<std::size_t>& trusted = suspected.empty() ? rows : others;
  std::vector<std::size_t> loaded;
  loaded.reserve(rows.size());
  if (!trusted.empty() &&
      !isolation_detail::run_step([&](std::span<const std::vector<std::size_t>> pieces) { return steps.load_run(pieces); },
                                  trusted, out, loaded)) {
    return out;
  }
  if (!suspected.empty()) {
    ++out.statements;
    ++out.exchanges;
    EachResult each = steps.load_each(suspected);
    if (!each.batch_error && each.errors.size() != suspected.size()) {
      each.batch_error = StepError{"XX000", "rows tried alone: " + std::to_string(each.errors.size()) + " answers for " +
                                                std::to_string(suspected.size()) + " rows", {}};
    }
    std::size_t refused = 0;
    for (std::size_t i = 0; i < suspected.size() && !each.batch_error; ++i) {
      std::optional<StepError>& error = each.errors[i];
      if (!error) {
        loaded.push_back(suspected[i]);
      } else if (!isolation_detail::is_row_error(*error)) {
        each.batch_error = std::move(error);  // a deadlock, say: the batch is tried again
      } else {
        const bool own = classify_sqlstate(error->sqlstate) == ErrorKind::row;
        (own ? out.rejected : out.failed).emplace_back(suspected[i], std::move(*error));
        ++refused;
      }
    }
    if (each.batch_error) {
      out.batch_error = std::move(each.batch_error);
      return out;
    }
    // Counted once the suspects are settled, so a batch tried again counts them once.
    out.suspects_tried = suspected.size();
    out.suspects_refused = refused;
    std::sort(loaded.begin(), loaded.end());
  }
  if (!upsert) {
    out.stored = std::move(loaded);
    return out;
  }
  std::vector<std::size_t> applied;
  applied.reserve(loaded.size());
  // One statement at a time: an apply names no line, so its runs would only ever be bisection's.
  auto apply = [&](std::span<const std::vector<std::size_t>> pieces) {
    return one_at_a_time(pieces, [&](const std::vector<std::size_t>& piece) {
      return LoadResult{steps.apply(piece), piece.size()};
    });
  };
  if (!isolation_detail::run_step(apply, loaded, out, applied)) {
    return out;
  }
  out.stored = std::move(applied);
  return out;
}

}  // namespace etl::plugins::postgres
