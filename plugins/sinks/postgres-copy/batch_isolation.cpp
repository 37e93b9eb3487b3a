#include "batch_isolation.hpp"

namespace etl::plugins::postgres {

namespace {

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

}  // namespace

namespace isolation_detail {

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

RunResult BatchSteps::load_run(std::span<const std::vector<std::size_t>> pieces) {
  return one_at_a_time(pieces, [this](const std::vector<std::size_t>& piece) { return load(piece); });
}

EachResult BatchSteps::load_each(std::span<const std::size_t> rows) {
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

namespace isolation_detail {

bool is_row_error(const StepError& error) {
  const ErrorKind kind = classify_sqlstate(error.sqlstate);
  // 21000: ON CONFLICT DO UPDATE met one key twice in one statement; separating them cures it.
  return kind == ErrorKind::row || kind == ErrorKind::other || error.sqlstate == "21000";
}

std::size_t piece_rows(std::size_t bad_rows, std::size_t rows_tried) {
  constexpr double kStatementRows = 64;
  const double density = static_cast<double>(bad_rows) / static_cast<double>(std::max<std::size_t>(rows_tried, 1));
  const double best = std::sqrt(2 * kStatementRows / std::max(density, 1e-9));
  return static_cast<std::size_t>(std::clamp(best, 16.0, 1e9));
}

std::size_t run_pieces(std::size_t bad_rows, std::size_t rows_tried, std::size_t piece) {
  const double density = static_cast<double>(bad_rows) / static_cast<double>(std::max<std::size_t>(rows_tried, 1));
  const double expected = 1.0 / std::max(density * static_cast<double>(std::max<std::size_t>(piece, 1)), 1e-9);
  return static_cast<std::size_t>(std::clamp(std::ceil(2 * expected), 2.0, 64.0));
}

}  // namespace isolation_detail

Isolation isolate_rows(BatchSteps& steps, const std::vector<std::size_t>& rows, bool upsert,
                              const std::vector<std::size_t>& suspects) {
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
