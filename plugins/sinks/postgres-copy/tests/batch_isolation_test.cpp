// isolate_rows over a fake transaction: which rows are taken out, with whose error, and how
// many statements it costs.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "batch_isolation.hpp"

namespace etl::plugins::postgres {
namespace {

/// A table that refuses some rows: `bad` maps a row to its error's SQLSTATE. A load fails at
/// the first bad row it holds, naming its line unless `lines` is off (a translated server);
/// upsert's apply never names one.
class FakeSteps final : public BatchSteps {
 public:
  std::map<std::size_t, std::string> bad;
  std::map<std::size_t, std::string> bad_at_apply;
  bool lines = true;
  std::string batch_error;  // every statement fails with it (a deadlock)
  std::vector<std::size_t> loaded;  // rows of statements that went in, in order
  std::size_t rows_sent = 0;
  std::vector<std::size_t> load_sizes;  // rows of each load, in order

  std::size_t stop_after = 0;  // a load takes at most this many rows (0: all), as when cut short
  LoadResult load(std::span<const std::size_t> rows) override {
    const auto part = stop_after != 0 && rows.size() > stop_after ? rows.first(stop_after) : rows;
    load_sizes.push_back(rows.size());
    auto error = run(part, bad, lines);
    return {error, error ? 0 : part.size()};
  }
  std::optional<StepError> apply(std::span<const std::size_t> rows) override { return run(rows, bad_at_apply, false); }

 private:
  std::optional<StepError> run(std::span<const std::size_t> rows, const std::map<std::size_t, std::string>& refused,
                               bool with_line) {
    if (!batch_error.empty()) return StepError{batch_error, "deadlock detected", {}};
    for (std::size_t i = 0; i < rows.size(); ++i) {
      ++rows_sent;  // the session stops sending once the server has answered
      if (const auto found = refused.find(rows[i]); found != refused.end()) {
        StepError error{found->second, "row " + std::to_string(rows[i]) + " refused", {}};
        if (with_line) error.line = i + 1;
        return error;
      }
    }
    loaded.insert(loaded.end(), rows.begin(), rows.end());
    return std::nullopt;
  }
};

/// The same table, and a record of the runs isolate_rows asks for: each is one exchange with the
/// server, of which a real session sends all pieces at once.
class FakeRunSteps final : public BatchSteps {
 public:
  FakeSteps table;
  std::vector<std::vector<std::size_t>> runs;  // the piece sizes of each run, in order
  bool fail_between = false;                   // a statement between two loads fails (once)

  LoadResult load(std::span<const std::size_t> rows) override { return table.load(rows); }
  RunResult load_run(std::span<const std::vector<std::size_t>> pieces) override {
    std::vector<std::size_t> sizes;
    for (const auto& piece : pieces) sizes.push_back(piece.size());
    runs.push_back(std::move(sizes));
    if (fail_between && pieces.size() > 1) {
      RunResult out = table.load_run(pieces.first(1));
      out.batch_error = StepError{"25P02", "current transaction is aborted", {}};
      return out;
    }
    return table.load_run(pieces);
  }
  std::optional<StepError> apply(std::span<const std::size_t> rows) override { return table.apply(rows); }
};

std::vector<std::size_t> all_rows(std::size_t count) {
  std::vector<std::size_t> rows(count);
  for (std::size_t i = 0; i < count; ++i) rows[i] = i;
  return rows;
}

std::set<std::size_t> rejected_rows(const Isolation& isolation) {
  std::set<std::size_t> rows;
  for (const auto& [row, error] : isolation.rejected) rows.insert(row);
  return rows;
}

TEST(BatchIsolation, ACleanBatchIsOneStatement) {
  FakeSteps steps;
  const Isolation isolation = isolate_rows(steps, all_rows(1000), false);
  EXPECT_EQ(isolation.statements, 1u);
  EXPECT_EQ(isolation.stored, all_rows(1000));
  EXPECT_TRUE(isolation.rejected.empty());
  EXPECT_FALSE(isolation.batch_error);
}

TEST(BatchIsolation, EachBadRowIsRejectedWithItsOwnErrorAndTheOthersStoredInOrder) {
  FakeSteps steps;
  for (std::size_t row = 5; row < 1000; row += 100) steps.bad[row] = row % 200 == 5 ? "23514" : "22007";
  const Isolation isolation = isolate_rows(steps, all_rows(1000), false);
  ASSERT_EQ(isolation.rejected.size(), 10u);
  for (const auto& [row, error] : isolation.rejected) {
    EXPECT_EQ(error.sqlstate, steps.bad.at(row));
    EXPECT_EQ(error.message, "row " + std::to_string(row) + " refused");  // its own, not the first one's
  }
  std::vector<std::size_t> good;
  for (std::size_t row = 0; row < 1000; ++row) {
    if (!steps.bad.contains(row)) good.push_back(row);
  }
  EXPECT_EQ(isolation.stored, good);
  EXPECT_EQ(steps.loaded, good);  // every good row went in exactly once, in input order
  // With the line named: at most 2 statements per bad row, plus the pieces (of 16 rows or more)
  // the rows after the first bad one go in.
  EXPECT_LE(isolation.statements, 2 * steps.bad.size() + 1 + 1000 / 16);
  EXPECT_LE(isolation.rows_in_vain, steps.bad.size() * isolation_detail::piece_rows(1, 100));
  EXPECT_LE(steps.rows_sent, 2 * 1000u);
}

TEST(BatchIsolation, FewRowsBeforeABadOneRideWithTheNextPieceManyGoAlone) {
  // 20 rows, 5 and 10 bad: the 5 rows before row 5 go again with the rest (which fails at
  // row 10), then the 9 good ones before row 10 with the rest: 3 statements, not 5.
  FakeSteps few;
  few.bad = {{5, "23514"}, {10, "23505"}};
  const Isolation carried = isolate_rows(few, all_rows(20), false);
  EXPECT_EQ(carried.statements, 3u);
  EXPECT_EQ(few.load_sizes, (std::vector<std::size_t>{20, 19, 18}));
  EXPECT_EQ(rejected_rows(carried), (std::set<std::size_t>{5, 10}));
  std::vector<std::size_t> good = all_rows(20);
  std::erase_if(good, [](std::size_t row) { return row == 5 || row == 10; });
  EXPECT_EQ(few.loaded, good);  // once each, in input order
  EXPECT_EQ(carried.rows_in_vain, 5u + 9u);

  // 2,000 rows, 1,500 bad: the 1,500 before it are more than a piece, so they go alone (a
  // statement sure to succeed) and the rest in pieces; they are not risked again.
  FakeSteps many;
  many.bad = {{1500, "23514"}};
  const Isolation alone = isolate_rows(many, all_rows(2000), false);
  const std::size_t piece = isolation_detail::piece_rows(1, 1501);
  ASSERT_LT(piece, 1500u);
  ASSERT_GE(many.load_sizes.size(), 3u);
  EXPECT_EQ(many.load_sizes[0], 2000u);
  EXPECT_EQ(many.load_sizes[1], 1500u);
  EXPECT_EQ(many.load_sizes[2], std::min<std::size_t>(piece, 499));
  EXPECT_EQ(alone.rows_in_vain, 1500u);
  EXPECT_EQ(alone.stored.size(), 1999u);
}

TEST(BatchIsolation, PiecesAreShortWhereBadRowsAreDenseAndNeverUnderSixteen) {
  using isolation_detail::piece_rows;
  EXPECT_GT(piece_rows(1, 100000), 1000u);  // one bad row in 100,000: long pieces
  EXPECT_GT(piece_rows(1, 100), piece_rows(10, 100));
  EXPECT_EQ(piece_rows(50, 100), 16u);       // half of them bad: the floor
  EXPECT_EQ(piece_rows(1, 0), 16u);
}

TEST(BatchIsolation, PiecesGoInRunsThatStopAtTheirFirstFailure) {
  // 4,000 rows with a bad one every 133 (as 0.75 % would be): after the first failure the
  // pieces go several to an exchange, and a bad row costs about one exchange, not one per piece.
  FakeRunSteps steps;
  for (std::size_t row = 60; row < 4000; row += 133) steps.table.bad[row] = row % 2 == 0 ? "23505" : "23514";
  const Isolation isolation = isolate_rows(steps, all_rows(4000), false);
  ASSERT_EQ(isolation.rejected.size(), steps.table.bad.size());
  std::vector<std::size_t> good;
  for (std::size_t row = 0; row < 4000; ++row) {
    if (!steps.table.bad.contains(row)) good.push_back(row);
  }
  EXPECT_EQ(steps.table.loaded, good);  // each once, in input order: a run never passes a failure
  EXPECT_EQ(isolation.stored, good);
  EXPECT_EQ(isolation.exchanges, steps.runs.size());
  EXPECT_EQ(steps.runs.front(), (std::vector<std::size_t>{4000}));  // the whole batch first
  EXPECT_LE(isolation.exchanges, steps.table.bad.size() + 3);
  EXPECT_GT(isolation.statements, isolation.exchanges);
  std::size_t longest = 0;
  for (const auto& run : steps.runs) longest = std::max(longest, run.size());
  EXPECT_GE(longest, 2u);
}

TEST(BatchIsolation, RunsCarryAboutTwiceThePiecesExpectedBeforeTheNextBadRow) {
  using isolation_detail::run_pieces;
  EXPECT_EQ(run_pieces(1, 1000, 100), 20u);   // one bad row in 1,000 rows, pieces of 100
  EXPECT_EQ(run_pieces(75, 10000, 130), 3u);  // 0.75 %: a piece fails about one time in 1
  EXPECT_EQ(run_pieces(50, 100, 16), 2u);     // dense: the floor
  EXPECT_EQ(run_pieces(1, 1000000, 1000), 64u);  // sparse: the ceiling
}

TEST(BatchIsolation, APieceCutShortInARunGoesOnWithItsRestBeforeThePiecesAfterIt) {
  FakeRunSteps steps;
  steps.table.stop_after = 10;  // every load takes at most 10 rows, as when a notice cuts it short
  steps.table.bad[5] = "23514";
  steps.table.bad[70] = "23514";
  const Isolation isolation = isolate_rows(steps, all_rows(200), false);
  EXPECT_EQ(rejected_rows(isolation), (std::set<std::size_t>{5, 70}));
  std::vector<std::size_t> good = all_rows(200);
  std::erase_if(good, [](std::size_t row) { return row == 5 || row == 70; });
  EXPECT_EQ(steps.table.loaded, good);
  EXPECT_EQ(isolation.stored, good);
}

TEST(BatchIsolation, AStatementFailingBetweenTheLoadsOfARunDecidesNothingAfterThem) {
  FakeRunSteps steps;
  steps.fail_between = true;
  steps.table.bad[50] = "23514";
  const Isolation isolation = isolate_rows(steps, all_rows(2000), false);
  ASSERT_TRUE(isolation.batch_error);
  EXPECT_EQ(isolation.batch_error->sqlstate, "25P02");
  ASSERT_GE(steps.runs.size(), 2u);
  EXPECT_GE(steps.runs.back().size(), 2u);
}

TEST(BatchIsolation, WithoutLinesBisectionFindsTheSameRows) {
  FakeSteps steps;
  steps.lines = false;
  for (const std::size_t row : {0u, 1u, 2u, 511u, 998u, 999u}) steps.bad[row] = "23505";
  const Isolation isolation = isolate_rows(steps, all_rows(1000), false);
  EXPECT_EQ(rejected_rows(isolation), (std::set<std::size_t>{0, 1, 2, 511, 998, 999}));
  EXPECT_EQ(isolation.stored.size(), 994u);
  // log2(1000) is about 10: every bad row costs at most about 2 statements per level.
  EXPECT_LE(isolation.statements, 6u * 2u * 11u);
}

TEST(BatchIsolation, ALoadCutShortGoesOnWithTheRestAfterIt) {
  FakeSteps steps;
  steps.stop_after = 30;
  steps.bad[45] = "23514";
  const Isolation isolation = isolate_rows(steps, all_rows(100), false);
  EXPECT_EQ(rejected_rows(isolation), (std::set<std::size_t>{45}));
  EXPECT_EQ(isolation.stored.size(), 99u);
  EXPECT_EQ(steps.loaded, isolation.stored);
}

TEST(BatchIsolation, RowsAlreadySettledAreLeftOut) {
  FakeSteps steps;
  steps.bad[4] = "23514";
  const Isolation isolation = isolate_rows(steps, {1, 4, 6, 9}, false);
  EXPECT_EQ(isolation.stored, (std::vector<std::size_t>{1, 6, 9}));
  EXPECT_EQ(rejected_rows(isolation), (std::set<std::size_t>{4}));
}

TEST(BatchIsolation, UpsertApplyErrorsAreFoundByBisectionAfterTheLoad) {
  FakeSteps steps;
  steps.bad[3] = "22P02";          // refused at the load: never applied
  steps.bad_at_apply[7] = "23514";  // refused when it meets the table
  const Isolation isolation = isolate_rows(steps, all_rows(16), true);
  EXPECT_EQ(rejected_rows(isolation), (std::set<std::size_t>{3, 7}));
  std::vector<std::size_t> expected;
  for (std::size_t row = 0; row < 16; ++row) {
    if (row != 3 && row != 7) expected.push_back(row);
  }
  EXPECT_EQ(isolation.stored, expected);
}

TEST(BatchIsolation, AnErrorOfOtherKindAloneIsFailedNotRejected) {
  FakeSteps steps;
  steps.bad[2] = "P0001";  // a trigger's RAISE EXCEPTION
  const Isolation isolation = isolate_rows(steps, all_rows(5), false);
  EXPECT_TRUE(isolation.rejected.empty());
  ASSERT_EQ(isolation.failed.size(), 1u);
  EXPECT_EQ(isolation.failed.front().first, 2u);
  EXPECT_EQ(isolation.stored, (std::vector<std::size_t>{0, 1, 3, 4}));
}

TEST(BatchIsolation, AnErrorOfNoRowsMakingDecidesNothing) {
  FakeSteps steps;
  steps.batch_error = "40P01";
  const Isolation isolation = isolate_rows(steps, all_rows(100), false);
  ASSERT_TRUE(isolation.batch_error);
  EXPECT_EQ(isolation.batch_error->sqlstate, "40P01");
  EXPECT_EQ(isolation.statements, 1u);
  EXPECT_TRUE(isolation.stored.empty());
  EXPECT_TRUE(isolation.rejected.empty());
}

TEST(BatchIsolation, EveryRowBadStillEndsWithEachRejectedOnce) {
  FakeSteps steps;
  for (std::size_t row = 0; row < 50; ++row) steps.bad[row] = "23502";
  const Isolation isolation = isolate_rows(steps, all_rows(50), false);
  EXPECT_EQ(isolation.rejected.size(), 50u);
  EXPECT_TRUE(isolation.stored.empty());
  EXPECT_EQ(isolation.statements, 50u);  // the line names each in turn
}

TEST(IsolateRows, SuspectsAreTriedAloneAfterTheOtherRowsAndOnlyTheBadOnesRejected) {
  FakeSteps steps;
  steps.bad = {{10, "23505"}, {40, "22008"}};
  // 10 and 40 are bad and suspected; 25 is suspected in vain.
  const Isolation isolation = isolate_rows(steps, all_rows(50), false, {10, 25, 40});
  ASSERT_FALSE(isolation.batch_error);
  ASSERT_EQ(isolation.rejected.size(), 2u);
  EXPECT_EQ(isolation.rejected[0].first, 10u);
  EXPECT_EQ(isolation.rejected[0].second.sqlstate, "23505");
  EXPECT_EQ(isolation.rejected[1].first, 40u);
  EXPECT_EQ(isolation.stored.size(), 48u);
  EXPECT_TRUE(std::is_sorted(isolation.stored.begin(), isolation.stored.end()));
  EXPECT_TRUE(std::find(isolation.stored.begin(), isolation.stored.end(), 25u) != isolation.stored.end());
  // One load of the 47 trusted rows (nothing in vain), then the three suspects one by one, in order.
  ASSERT_EQ(steps.load_sizes, (std::vector<std::size_t>{47, 1, 1, 1}));
  EXPECT_EQ(steps.loaded.back(), 25u);
  EXPECT_EQ(isolation.rows_in_vain, 0u);
  EXPECT_EQ(isolation.suspects_tried, 3u);
  EXPECT_EQ(isolation.suspects_refused, 2u);
}

TEST(IsolateRows, ABadRowNotSuspectedIsStillFoundByItsLine) {
  FakeSteps steps;
  steps.bad = {{7, "23514"}, {30, "23505"}};
  const Isolation isolation = isolate_rows(steps, all_rows(40), false, {30});
  ASSERT_FALSE(isolation.batch_error);
  ASSERT_EQ(isolation.rejected.size(), 2u);
  EXPECT_EQ(isolation.rejected[0].first, 7u);
  EXPECT_EQ(isolation.rejected[1].first, 30u);
  EXPECT_EQ(isolation.stored.size(), 38u);
  EXPECT_EQ(isolation.suspects_refused, 1u);
}

TEST(IsolateRows, ASuspectMeetingADeadlockFailsTheBatchNotTheRow) {
  // load_each reports a row's own error per row; one no row can cause is the batch's.
  class DeadlockedEach final : public BatchSteps {
   public:
    LoadResult load(std::span<const std::size_t> rows) override { return {std::nullopt, rows.size()}; }
    std::optional<StepError> apply(std::span<const std::size_t>) override { return std::nullopt; }
    EachResult load_each(std::span<const std::size_t> rows) override {
      EachResult out;
      out.errors.resize(rows.size());
      out.errors[0] = StepError{"40P01", "deadlock detected", {}};
      return out;
    }
  } steps;
  const Isolation isolation = isolate_rows(steps, all_rows(10), false, {3, 4});
  ASSERT_TRUE(isolation.batch_error);
  EXPECT_EQ(isolation.batch_error->sqlstate, "40P01");
  EXPECT_TRUE(isolation.rejected.empty());
}

TEST(IsolateRows, UpsertIgnoresSuspects) {
  FakeSteps steps;
  const Isolation isolation = isolate_rows(steps, all_rows(20), true, {3});
  EXPECT_EQ(isolation.stored.size(), 20u);
  EXPECT_EQ(isolation.suspects_tried, 0u);
  EXPECT_EQ(steps.load_sizes, (std::vector<std::size_t>{20}));
}

}  // namespace
}  // namespace etl::plugins::postgres
