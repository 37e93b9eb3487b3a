#pragma once
// What the server's answers to one row mean for it: pure logic over ResultViews (what the
// sink reads from each PGresult), so every case is tested without a server
// (tests/answers_test.cpp).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "postgres/error_kind.hpp"
#include "etl/sdk.hpp"
#include "postgres/sql_text.hpp"
#include "postgres/transaction_ids.hpp"

namespace etl::plugins::postgres {

/// One PGresult, as far as the sink cares.
struct ResultView {
  enum class Kind { rows, command, error, pipeline_aborted, sync, other };
  Kind kind = Kind::other;
  std::string sqlstate;
  std::string message;
  int rows = 0;                            // rows: how many
  std::string touched;                     // command: PQcmdTuples ("0" when none touched)
  std::optional<std::string> first_value;  // rows: first column of the first row
  std::vector<sdk::Field> first_row;       // rows: the first row, when asked for (statement mode)
  bool connection_bad = false;             // the connection is gone (PQstatus)
};

/// A row's answers: its statement's result, and the error its commit (the sync point) met.
struct RowAnswers {
  ResultView statement;
  std::optional<ResultView> commit_error;
};

struct Answer {
  sdk::Outcome outcome;
  bool retry = false;            // a retryable error: the row may be sent again
  bool fatal = false;            // an error every row will meet: the run must stop
  bool at_commit = false;        // the error came at the commit (deferred constraint, serialization)
  bool connection_lost = false;  // not the row's answer: the connection went away (lost_reason)
  std::string lost_reason;
  std::optional<std::uint64_t> xid;  // table modes: the row's transaction
};

/// The outcome one result stands for: ok, or the error's outcome (or a lost connection).
Answer interpret_result(const ResultView& result);

/// The row's outcome from its answers. `replayed`: the row was sent again after its
/// connection was lost (a delete then finding nothing may have been its own first try).
Answer interpret_answers(WriteMode mode, bool replayed, const std::string& table, const RowAnswers& answers);

}  // namespace etl::plugins::postgres
