// What a row's answers mean: interpret_answers over each kind of result. No server needed.

#include <gtest/gtest.h>

#include "postgres/answers.hpp"

namespace etl::plugins::postgres {
namespace {

ResultView rows(int count, std::optional<std::string> first = std::nullopt) {
  ResultView r;
  r.kind = ResultView::Kind::rows;
  r.rows = count;
  r.first_value = std::move(first);
  return r;
}
ResultView command(const char* touched) {
  ResultView r;
  r.kind = ResultView::Kind::command;
  r.touched = touched;
  return r;
}
ResultView error(const char* sqlstate, const char* message = "boom") {
  ResultView r;
  r.kind = ResultView::Kind::error;
  r.sqlstate = sqlstate;
  r.message = message;
  return r;
}
Answer answer(WriteMode mode, ResultView statement, std::optional<ResultView> commit = {}, bool replayed = false) {
  return interpret_answers(mode, replayed, "t", RowAnswers{std::move(statement), std::move(commit)});
}

TEST(Answers, AStoredRowIsOkWithItsTransaction) {
  const auto a = answer(WriteMode::insert, rows(1, "1234"));
  EXPECT_EQ(a.outcome.status, sdk::Status::ok);
  EXPECT_EQ(a.xid, 1234u);
  EXPECT_FALSE(a.connection_lost);
}

TEST(Answers, ErrorsByClass) {
  const auto check = answer(WriteMode::insert, error("23514", "violates check"));
  EXPECT_EQ(check.outcome.status, sdk::Status::rejected);
  EXPECT_EQ(check.outcome.code, "23514");
  EXPECT_EQ(check.outcome.message, "violates check");
  const auto no_table = answer(WriteMode::insert, error("42P01"));
  EXPECT_EQ(no_table.outcome.status, sdk::Status::failed);
  EXPECT_TRUE(no_table.fatal);
  const auto serialization = answer(WriteMode::insert, error("40001"));
  EXPECT_TRUE(serialization.retry);
  EXPECT_FALSE(serialization.fatal);
  EXPECT_TRUE(answer(WriteMode::insert, error("57P01", "terminating connection")).connection_lost);
  EXPECT_TRUE(answer(WriteMode::insert, error("08006")).connection_lost);
  ResultView aborted;
  aborted.kind = ResultView::Kind::pipeline_aborted;
  EXPECT_TRUE(answer(WriteMode::insert, aborted).connection_lost);
  ResultView gone = error("");
  gone.connection_bad = true;
  EXPECT_TRUE(answer(WriteMode::insert, gone).connection_lost);
}

TEST(Answers, AnErrorAtCommitIsTheRowsOwnOutcome) {
  // A deferred unique constraint fails at the sync point, after the insert succeeded.
  const auto deferred = answer(WriteMode::insert, rows(1, "77"), error("23505", "duplicate key"));
  EXPECT_FALSE(deferred.connection_lost);
  EXPECT_TRUE(deferred.at_commit);
  EXPECT_EQ(deferred.outcome.status, sdk::Status::rejected);
  EXPECT_EQ(deferred.outcome.code, "23505");
  EXPECT_EQ(deferred.xid, 77u);
  const auto serialization = answer(WriteMode::insert, rows(1, "78"), error("40001"));
  EXPECT_TRUE(serialization.retry);
  EXPECT_TRUE(serialization.at_commit);
  EXPECT_TRUE(answer(WriteMode::insert, rows(1, "79"), error("57P01")).connection_lost);
}

TEST(Answers, NothingTouchedByMode) {
  EXPECT_EQ(answer(WriteMode::update, rows(0)).outcome.code, "not_found");
  EXPECT_EQ(answer(WriteMode::update, rows(0)).outcome.status, sdk::Status::rejected);
  EXPECT_EQ(answer(WriteMode::remove, rows(0)).outcome.code, "not_found");
  const auto replayed_delete = answer(WriteMode::remove, rows(0), std::nullopt, true);
  EXPECT_EQ(replayed_delete.outcome.status, sdk::Status::ok);
  EXPECT_EQ(replayed_delete.outcome.code, "absent");
  const auto guarded = answer(WriteMode::upsert, rows(0));
  EXPECT_EQ(guarded.outcome.status, sdk::Status::ok);
  EXPECT_EQ(guarded.outcome.code, "unchanged");
}

TEST(Answers, StatementModeDetailAndNotFound) {
  ResultView returning = rows(1, "17");
  returning.first_row = {sdk::Field{"id", sdk::Value(std::int64_t{17})}};
  const auto with_row = answer(WriteMode::statement, returning);
  EXPECT_EQ(with_row.outcome.status, sdk::Status::ok);
  ASSERT_EQ(with_row.outcome.detail.size(), 1u);
  EXPECT_EQ(with_row.outcome.detail[0].name, "id");
  EXPECT_FALSE(with_row.xid);  // a user's first column is no transaction id
  EXPECT_EQ(answer(WriteMode::statement, rows(0)).outcome.code, "not_found");
  EXPECT_EQ(answer(WriteMode::statement, command("0")).outcome.code, "not_found");
  EXPECT_EQ(answer(WriteMode::statement, command("3")).outcome.status, sdk::Status::ok);
}

}  // namespace
}  // namespace etl::plugins::postgres
