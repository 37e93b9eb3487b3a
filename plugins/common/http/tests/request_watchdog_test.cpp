// The watchdog ends a blocked read on a real socket pair: when the deadline passes, when a stop
// is asked, and never after it is disarmed.

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "http/request_watchdog.hpp"

namespace etl::plugins::http {
namespace {

using namespace std::chrono_literals;
using Clock = RequestWatchdog::Clock;

struct SocketPair {
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0); }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  int fds[2] = {-1, -1};
};

/// Blocks in read(2) on `fd` until it returns; how long that took.
Clock::duration blocked_read(int fd) {
  const auto started = Clock::now();
  char byte = 0;
  [[maybe_unused]] const auto n = ::read(fd, &byte, 1);
  return Clock::now() - started;
}

TEST(RequestWatchdog, EndsABlockedReadAtTheDeadline) {
  std::atomic<bool> stop{false};
  RequestWatchdog watchdog([&] { return stop.load(); });
  SocketPair pair;
  watchdog.arm(pair.fds[0], Clock::now() + 200ms);
  const auto took = blocked_read(pair.fds[0]);
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(watchdog.disarm(), RequestWatchdog::Reason::deadline);
}

TEST(RequestWatchdog, EndsABlockedReadWhenAStopIsAsked) {
  std::atomic<bool> stop{false};
  RequestWatchdog watchdog([&] { return stop.load(); });
  SocketPair pair;
  watchdog.arm(pair.fds[0], Clock::now() + 60s);
  std::thread stopper([&] {
    std::this_thread::sleep_for(100ms);
    stop = true;
  });
  const auto took = blocked_read(pair.fds[0]);
  stopper.join();
  EXPECT_LT(took, 2s);
  EXPECT_EQ(watchdog.disarm(), RequestWatchdog::Reason::stopped);
}

TEST(RequestWatchdog, ADisarmedWatchdogLeavesTheSocketAlone) {
  std::atomic<bool> stop{false};
  RequestWatchdog watchdog([&] { return stop.load(); });
  SocketPair pair;
  watchdog.arm(pair.fds[0], Clock::now() + 100ms);
  EXPECT_EQ(watchdog.disarm(), std::nullopt);
  stop = true;
  std::this_thread::sleep_for(300ms);  // past the old deadline, with a stop asked: nothing may fire
  ASSERT_EQ(::write(pair.fds[1], "x", 1), 1);
  char byte = 0;
  EXPECT_EQ(::read(pair.fds[0], &byte, 1), 1);
  EXPECT_EQ(byte, 'x');
  EXPECT_EQ(watchdog.fired(), std::nullopt);
}

TEST(RequestWatchdog, CanBeArmedAgainAfterFiring) {
  std::atomic<bool> stop{false};
  RequestWatchdog watchdog([&] { return stop.load(); });
  SocketPair first;
  watchdog.arm(first.fds[0], Clock::now() + 50ms);
  blocked_read(first.fds[0]);
  EXPECT_EQ(watchdog.disarm(), RequestWatchdog::Reason::deadline);
  SocketPair second;
  watchdog.arm(second.fds[0], Clock::now() + 50ms);
  const auto took = blocked_read(second.fds[0]);
  EXPECT_LT(took, 2s);
  EXPECT_EQ(watchdog.disarm(), RequestWatchdog::Reason::deadline);
}

}  // namespace
}  // namespace etl::plugins::http
