#include "postgres/answers.hpp"

namespace etl::plugins::postgres {

Answer interpret_result(const ResultView& result) {
  Answer answer;
  if (result.kind == ResultView::Kind::rows || result.kind == ResultView::Kind::command) {
    answer.outcome = sdk::Outcome::ok();
    return answer;
  }
  const ErrorKind kind = classify_sqlstate(result.sqlstate);
  const std::string message = result.message.empty() ? std::string("connection lost") : result.message;
  // PIPELINE_ABORTED: the server skipped the row after an earlier failure; it is sent again.
  if (result.connection_bad || kind == ErrorKind::connection || result.kind == ResultView::Kind::pipeline_aborted ||
      result.kind != ResultView::Kind::error) {
    answer.connection_lost = true;
    answer.lost_reason = message;
    return answer;
  }
  if (kind == ErrorKind::row) {
    answer.outcome = sdk::Outcome::rejected(result.sqlstate, result.message);
  } else {
    answer.outcome = sdk::Outcome::failed(result.message, result.sqlstate);
    answer.fatal = kind == ErrorKind::fatal;
    answer.retry = kind == ErrorKind::retry_row;
  }
  return answer;
}

Answer interpret_answers(WriteMode mode, bool replayed, const std::string& table, const RowAnswers& answers) {
  Answer answer = interpret_result(answers.statement);
  const ResultView& result = answers.statement;
  if (!answer.connection_lost && answer.outcome.status == sdk::Status::ok) {
    if (mode == WriteMode::statement) {
      // The user's statement: its first row is the outcome's detail; nothing returned or
      // touched is "not found" (the webhook's 404).
      if (result.kind == ResultView::Kind::rows && result.rows > 0) {
        answer.outcome.detail = result.first_row;
      } else if (result.kind == ResultView::Kind::rows || result.touched == "0") {
        answer.outcome = sdk::Outcome::rejected("not_found", "the statement found no row");
      }
    } else if (result.kind == ResultView::Kind::rows && result.rows == 1 && result.first_value) {
      answer.xid = parse_transaction_id(*result.first_value);
    } else if (result.kind == ResultView::Kind::rows && result.rows == 0) {
      // The statement touched no row: no key (update, delete), or the guard kept the stored row.
      if (mode == WriteMode::remove && replayed) {
        answer.outcome.code = "absent";  // the first try may have deleted it: absent either way
      } else if (mode == WriteMode::update || mode == WriteMode::remove) {
        answer.outcome = sdk::Outcome::rejected("not_found", "no row in " + table + " with the key columns' values");
      } else {
        answer.outcome.code = "unchanged";
      }
    }
  }
  // An error at the sync point is the commit's own (a deferred constraint, a serialization
  // failure at commit): it is the row's outcome, not a lost connection.
  if (answers.commit_error && !answer.connection_lost) {
    const auto xid = answer.xid;
    answer = interpret_result(*answers.commit_error);
    answer.at_commit = true;
    answer.xid = xid;  // aborted: kept only so the connection's floor moves past it
  }
  return answer;
}

}  // namespace etl::plugins::postgres
