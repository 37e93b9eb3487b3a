// The watermark and the positions behind it: a position is committable only when every record
// before it has its final outcome, whatever order they settle in, in constant space.
#include "checkpoint.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace etl::host {
namespace {

using sdk::Status;

TEST(Watermark, SettlesInAnyOrderAndRemembersOnlyWhatIsAboveIt) {
  std::vector<std::uint64_t> order(10000);
  std::iota(order.begin(), order.end(), 1);
  std::mt19937 random(20261203);
  // Shuffled within windows of 64, as a parallel sink settles: out of order, but in flight is bounded.
  for (std::size_t from = 0; from < order.size(); from += 64) {
    std::shuffle(order.begin() + static_cast<long>(from), order.begin() + static_cast<long>(std::min(order.size(), from + 64)), random);
  }
  Watermark watermark;
  std::size_t widest = 0;
  std::uint64_t highest = 0;
  for (const auto sequence : order) {
    watermark.settle(sequence);
    highest = std::max(highest, sequence);
    widest = std::max(widest, watermark.window());
    // Never past a record not yet settled.
    EXPECT_LE(watermark.value(), highest);
  }
  EXPECT_EQ(watermark.value(), 10000u);
  EXPECT_EQ(watermark.window(), 0u);
  EXPECT_LE(widest, 64u);
}

TEST(Watermark, AGapHoldsItUntilFilledAndRepeatsChangeNothing) {
  Watermark watermark;
  watermark.settle(2);
  watermark.settle(3);
  watermark.settle(3);
  EXPECT_EQ(watermark.value(), 0u);
  watermark.settle(1);
  EXPECT_EQ(watermark.value(), 3u);
  watermark.settle(1);
  EXPECT_EQ(watermark.value(), 3u);
}

TEST(Checkpoints, APositionIsCommittableOnlyWhenEveryRecordBeforeItSettled) {
  Checkpoints checkpoints;
  checkpoints.yielded(3, R"({"offset":30})");
  checkpoints.yielded(6, R"({"offset":60})");
  checkpoints.settled(1, Status::ok);
  checkpoints.settled(3, Status::rejected);
  EXPECT_EQ(checkpoints.committable(), std::nullopt);  // 2 is in flight
  checkpoints.settled(5, Status::ok);
  checkpoints.settled(4, Status::ok);
  checkpoints.settled(2, Status::ok);
  const auto first = checkpoints.committable();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->text, R"({"offset":30})");  // 6 is still in flight
  EXPECT_EQ(checkpoints.committable(), std::nullopt);  // returned once
  checkpoints.settled(6, Status::rejected);  // a rejected record is settled: it is in the reject report
  const auto second = checkpoints.committable();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->text, R"({"offset":60})");
  EXPECT_EQ(second->after_sequence, 6u);
}

TEST(Checkpoints, OnlyTheNewestSettledPositionIsReturnedAndOlderOnesGo) {
  Checkpoints checkpoints;
  for (std::uint64_t batch = 1; batch <= 100; ++batch) checkpoints.yielded(batch * 10, "{\"b\":" + std::to_string(batch) + "}");
  for (std::uint64_t sequence = 1000; sequence >= 1; --sequence) checkpoints.settled(sequence, Status::ok);
  const auto newest = checkpoints.committable();
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->text, "{\"b\":100}");
  EXPECT_EQ(checkpoints.waiting(), 0u);
}

TEST(Checkpoints, AFailedRecordHoldsThePositionBeforeItForTheRestOfTheRun) {
  Checkpoints checkpoints;
  checkpoints.yielded(2, "a");
  checkpoints.yielded(4, "b");
  checkpoints.yielded(6, "c");
  checkpoints.settled(1, Status::ok);
  checkpoints.settled(2, Status::ok);
  checkpoints.settled(3, Status::failed);
  for (std::uint64_t sequence = 4; sequence <= 6; ++sequence) checkpoints.settled(sequence, Status::ok);
  const auto committed = checkpoints.committable();
  ASSERT_TRUE(committed.has_value());
  EXPECT_EQ(committed->text, "a");
  EXPECT_EQ(checkpoints.held_at(), 3u);
  EXPECT_EQ(checkpoints.committable(), std::nullopt);
}

TEST(Checkpoints, AFailedRecordSettledBeforeAnEarlierOneStillLetsTheEarlierCount) {
  Checkpoints checkpoints;
  checkpoints.yielded(2, "a");
  checkpoints.yielded(4, "b");
  checkpoints.settled(3, Status::failed);  // settled first, out of order
  checkpoints.settled(2, Status::ok);
  checkpoints.settled(1, Status::ok);
  const auto committed = checkpoints.committable();
  ASSERT_TRUE(committed.has_value());
  EXPECT_EQ(committed->text, "a");
}

TEST(Checkpoints, CommitPastFailedTreatsAFailureAsSettled) {
  Checkpoints checkpoints(true);
  checkpoints.yielded(3, "end");
  checkpoints.settled(2, Status::failed);
  checkpoints.settled(1, Status::ok);
  checkpoints.settled(3, Status::ok);
  const auto committed = checkpoints.committable();
  ASSERT_TRUE(committed.has_value());
  EXPECT_EQ(committed->text, "end");
  EXPECT_EQ(checkpoints.held_at(), std::nullopt);
}

TEST(Checkpoints, AMovedPositionWithoutNewRecordsReplacesTheOlderAndAnUnchangedOneIsIgnored) {
  Checkpoints checkpoints;
  checkpoints.resumed_from("start");
  checkpoints.yielded(0, "start");  // unchanged: the resumed position is not committed again
  EXPECT_EQ(checkpoints.committable(), std::nullopt);
  checkpoints.yielded(0, "skipped-a-blank-line");
  EXPECT_EQ(checkpoints.committable()->text, "skipped-a-blank-line");
  checkpoints.yielded(2, "x");
  checkpoints.yielded(2, "y");
  EXPECT_EQ(checkpoints.waiting(), 1u);
  checkpoints.settled(1, Status::ok);
  checkpoints.settled(2, Status::ok);
  EXPECT_EQ(checkpoints.committable()->text, "y");
}

TEST(Checkpoints, FanOutIsSettledOncePerSourceRecordSoTheWindowStaysBounded) {
  // The ledger acknowledges a source record once all its fan-out records settled; the watermark
  // counts source records, so a record split in many costs one slot.
  Checkpoints checkpoints;
  checkpoints.yielded(1000, "end");
  for (std::uint64_t sequence = 1000; sequence >= 1; --sequence) checkpoints.settled(sequence, Status::ok);
  EXPECT_EQ(checkpoints.watermark(), 1000u);
  EXPECT_EQ(checkpoints.committable()->text, "end");
}

}  // namespace
}  // namespace etl::host
