// Dispatcher: one budget shared by all connections; a key's rows stay on one connection; a
// stalled connection holds only its own rows.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "dispatcher.hpp"

namespace etl::plugins::postgres {
namespace {

using namespace std::chrono_literals;

Row row(std::uint64_t sequence, std::size_t key) {
  Row r;
  r.sequence = sequence;
  r.key_hash = key;
  return r;
}

TEST(Dispatcher, RowsOfOneKeyStayOnOneConnectionWhilePending) {
  Dispatcher dispatcher(4, 100);
  ASSERT_FALSE(dispatcher.push(row(1, 42)));
  ASSERT_FALSE(dispatcher.push(row(2, 42)));
  ASSERT_FALSE(dispatcher.push(row(3, 7)));
  std::size_t holder = 4;
  for (std::size_t c = 0; c < 4; ++c) {
    if (dispatcher.held(c) == 2) holder = c;
  }
  ASSERT_LT(holder, 4u) << "both rows of key 42 on one connection";
  Row taken;
  ASSERT_TRUE(dispatcher.take(holder, taken, false));
  EXPECT_EQ(taken.sequence, 1u);
  ASSERT_TRUE(dispatcher.take(holder, taken, false));
  EXPECT_EQ(taken.sequence, 2u);  // in order
  // Once both are settled the key may go anywhere: to the least loaded connection.
  dispatcher.settled(holder, 42);
  dispatcher.settled(holder, 42);
  EXPECT_EQ(dispatcher.held(holder), 0u);
  EXPECT_EQ(dispatcher.held(), 1u);
}

TEST(Dispatcher, ABarrierWaitsForEveryHeldRowAndHoldsBackTheRowsAfterIt) {
  Dispatcher dispatcher(2, 100);
  ASSERT_FALSE(dispatcher.push(row(1, 1)));
  ASSERT_FALSE(dispatcher.push(row(2, 2)));
  Row barrier = row(3, 0);
  barrier.barrier = true;
  auto pushed = std::async(std::launch::async, [&] { return dispatcher.push(barrier); });
  EXPECT_EQ(pushed.wait_for(100ms), std::future_status::timeout) << "two rows are still held";
  Row taken;
  for (std::size_t c = 0; c < 2; ++c) {
    ASSERT_TRUE(dispatcher.take(c, taken, false));
    dispatcher.settled(c, taken.key_hash);
  }
  ASSERT_EQ(pushed.wait_for(5s), std::future_status::ready) << "every row before it is decided";
  EXPECT_FALSE(pushed.get());
  EXPECT_EQ(dispatcher.held(), 1u);
  // The next row waits until the barrier is decided.
  auto after = std::async(std::launch::async, [&] { return dispatcher.push(row(4, 4)); });
  EXPECT_EQ(after.wait_for(100ms), std::future_status::timeout) << "the barrier is still held";
  std::size_t holder = dispatcher.held(0) == 1 ? 0 : 1;
  ASSERT_TRUE(dispatcher.take(holder, taken, false));
  EXPECT_EQ(taken.sequence, 3u);
  dispatcher.settled(holder, taken.key_hash);
  ASSERT_EQ(after.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(after.get());
}

TEST(Dispatcher, NewKeysGoToTheConnectionHoldingFewest) {
  Dispatcher dispatcher(3, 100);
  for (std::uint64_t i = 0; i < 30; ++i) ASSERT_FALSE(dispatcher.push(row(i, 1000 + i)));
  for (std::size_t c = 0; c < 3; ++c) EXPECT_EQ(dispatcher.held(c), 10u);
}

TEST(Dispatcher, AStalledConnectionHoldsOnlyItsOwnRows) {
  // Connection 0 takes a window of rows and never answers; the others take and settle. The
  // writer, pushing 10,000 distinct keys under a budget of 64, must not be held by it.
  constexpr std::size_t kConnections = 4, kBudget = 64;
  Dispatcher dispatcher(kConnections, kBudget);
  std::atomic<std::size_t> settled_by_others{0};
  std::vector<std::thread> workers;
  std::size_t stalled_holds = 0;
  for (std::size_t c = 1; c < kConnections; ++c) {
    workers.emplace_back([&, c] {
      Row r;
      while (dispatcher.take(c, r, true)) {
        dispatcher.settled(c, r.key_hash);
        ++settled_by_others;
      }
    });
  }
  auto writer = std::async(std::launch::async, [&] {
    for (std::uint64_t i = 0; i < 10000; ++i) {
      if (dispatcher.push(row(i, i))) return false;
    }
    return true;
  });
  ASSERT_EQ(writer.wait_for(30s), std::future_status::ready) << "the writer was held by the stalled connection";
  EXPECT_TRUE(writer.get());
  stalled_holds = dispatcher.held(0);
  dispatcher.close();
  for (auto& w : workers) w.join();
  EXPECT_LE(stalled_holds, kBudget / 2) << "the stalled connection was given more than its share";
  EXPECT_EQ(settled_by_others.load() + dispatcher.held(0), 10000u);
}

TEST(Dispatcher, ThePushWaitsForRoomInTheBudget) {
  Dispatcher dispatcher(2, 2);
  ASSERT_FALSE(dispatcher.push(row(1, 1)));
  ASSERT_FALSE(dispatcher.push(row(2, 2)));
  auto third = std::async(std::launch::async, [&] { return dispatcher.push(row(3, 3)); });
  EXPECT_EQ(third.wait_for(100ms), std::future_status::timeout);
  Row taken;
  std::size_t connection = dispatcher.take(0, taken, false) ? 0 : 1;
  if (connection == 1) {
    ASSERT_TRUE(dispatcher.take(1, taken, false));
  }
  dispatcher.settled(connection, taken.key_hash);
  ASSERT_EQ(third.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(third.get());
}

TEST(Dispatcher, ARetiredConnectionReturnsItsQueueAndTakesNoMore) {
  Dispatcher dispatcher(2, 100);
  for (std::uint64_t i = 0; i < 4; ++i) ASSERT_FALSE(dispatcher.push(row(i, i)));
  const auto left = dispatcher.retire(0, "database unreachable");
  EXPECT_EQ(left.size(), 2u);
  for (std::uint64_t i = 10; i < 14; ++i) ASSERT_FALSE(dispatcher.push(row(i, i)));
  EXPECT_EQ(dispatcher.held(0), 0u);
  EXPECT_EQ(dispatcher.held(1), 6u);
  dispatcher.retire(1, "gone too");
  EXPECT_TRUE(dispatcher.all_retired());
  const auto refused = dispatcher.push(row(20, 20));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->reason, "database unreachable");
  EXPECT_FALSE(refused->unavailable);
}

TEST(Dispatcher, AKeyOnARetiredConnectionIsNotMovedElsewhere) {
  Dispatcher dispatcher(2, 100);
  ASSERT_FALSE(dispatcher.push(row(1, 5)));
  const std::size_t holder = dispatcher.held(0) == 1 ? 0 : 1;
  Row taken;
  ASSERT_TRUE(dispatcher.take(holder, taken, false));  // in flight there, undecided
  dispatcher.retire(holder, "lost");
  const auto refused = dispatcher.push(row(2, 5));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->reason, "lost");
  EXPECT_FALSE(refused->unavailable);
}

TEST(Dispatcher, ADownConnectionHandsBackItsQueueAndRowsGoElsewhereUntilAllAreDown) {
  Dispatcher dispatcher(2, 100);
  for (std::uint64_t i = 0; i < 4; ++i) ASSERT_FALSE(dispatcher.push(row(i, i)));
  const auto handed_back = dispatcher.down(0, "PostgreSQL is unreachable");
  EXPECT_EQ(handed_back.size(), 2u);
  EXPECT_EQ(dispatcher.held(0), 0u);
  for (std::uint64_t i = 10; i < 14; ++i) ASSERT_FALSE(dispatcher.push(row(i, i)));
  EXPECT_EQ(dispatcher.held(1), 6u);
  dispatcher.down(1, "PostgreSQL is unreachable");
  // Every connection down: refused at once (not waiting on the budget), as unavailable.
  const auto refused = dispatcher.push(row(20, 20));
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->unavailable);
  EXPECT_EQ(refused->reason, "PostgreSQL is unreachable");
  EXPECT_FALSE(dispatcher.all_retired());
  dispatcher.up(1);
  EXPECT_FALSE(dispatcher.push(row(21, 21)));
}

TEST(Dispatcher, CloseEndsWaitingTakesAndAbortEndsWaitingPushes) {
  Dispatcher dispatcher(1, 1);
  auto take = std::async(std::launch::async, [&] {
    Row r;
    return dispatcher.take(0, r, true);
  });
  EXPECT_EQ(take.wait_for(50ms), std::future_status::timeout);
  dispatcher.close();
  ASSERT_EQ(take.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(take.get());
  ASSERT_FALSE(dispatcher.push(row(1, 1)));
  auto push = std::async(std::launch::async, [&] { return dispatcher.push(row(2, 2)); });
  EXPECT_EQ(push.wait_for(50ms), std::future_status::timeout);
  dispatcher.abort();
  ASSERT_EQ(push.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(push.get());
}

TEST(Dispatcher, HoldingKeepsADownConnectionsRowsAndMakesPushesWaitUntilOneIsUp) {
  Dispatcher dispatcher(2, 100);
  std::atomic<bool> stopping{false};
  dispatcher.hold_while_down([&] { return stopping.load(); });
  for (std::uint64_t i = 0; i < 4; ++i) ASSERT_FALSE(dispatcher.push(row(i, i)));
  EXPECT_TRUE(dispatcher.down(0, "PostgreSQL is unreachable").empty());  // they wait for it
  EXPECT_EQ(dispatcher.held(0), 2u);
  dispatcher.down(1, "PostgreSQL is unreachable");
  auto waiting = std::async(std::launch::async, [&] { return dispatcher.push(row(20, 20)); });
  EXPECT_EQ(waiting.wait_for(300ms), std::future_status::timeout);  // not refused: it waits
  dispatcher.up(1);
  ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(waiting.get());
  // A row of a key held by the down connection waits for that one (its order), not another.
  auto same_key = std::async(std::launch::async, [&] { return dispatcher.push(row(30, 0)); });
  EXPECT_EQ(same_key.wait_for(300ms), std::future_status::timeout);
  dispatcher.up(0);
  ASSERT_EQ(same_key.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(same_key.get());
  Row taken;
  ASSERT_TRUE(dispatcher.take(0, taken, false));
  EXPECT_EQ(taken.sequence, 0u);  // the rows queued before the outage, first
  // The run stops during an outage: the waiting push is refused as unavailable.
  dispatcher.down(0, "PostgreSQL is unreachable");
  dispatcher.down(1, "PostgreSQL is unreachable");
  auto stopped = std::async(std::launch::async, [&] { return dispatcher.push(row(40, 40)); });
  EXPECT_EQ(stopped.wait_for(300ms), std::future_status::timeout);
  stopping = true;
  ASSERT_EQ(stopped.wait_for(5s), std::future_status::ready);
  const auto refused = stopped.get();
  ASSERT_TRUE(refused);
  EXPECT_TRUE(refused->unavailable);
}

}  // namespace
}  // namespace etl::plugins::postgres
