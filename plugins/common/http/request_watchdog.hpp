#pragma once
// Ends a blocking socket read that must not go on: the request's time budget is spent, or the
// run was asked to stop.
//
// Poco's timeouts bound each read separately, so a server that trickles one byte a second, or
// sends headers and then goes silent while its body is still "in progress", is never timed
// out. The watchdog shuts the socket down from another thread instead; the blocked read then
// returns an error at once and the reader asks `fired()` why.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include <sys/socket.h>

namespace etl::plugins::http {

class RequestWatchdog {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Reason { deadline, stopped };

  /// `stop_requested` is polled every `poll` while armed.
  explicit RequestWatchdog(std::function<bool()> stop_requested,
                           std::chrono::milliseconds poll = std::chrono::milliseconds(50))
      : stop_requested_(std::move(stop_requested)), poll_(poll), thread_([this] { watch(); }) {}

  RequestWatchdog(const RequestWatchdog&) = delete;
  RequestWatchdog& operator=(const RequestWatchdog&) = delete;

  ~RequestWatchdog();

  /// Watches `socket` until disarm(): shuts it down once `deadline` passes or a stop is asked.
  /// The caller keeps the socket open until disarm() returns.
  void arm(int socket, Clock::time_point deadline);

  /// Stops watching; after it returns the watchdog no longer touches the socket. Returns why
  /// it fired while armed, if it did.
  std::optional<Reason> disarm();

  /// Why it fired during the current (or last) arming, if it did.
  [[nodiscard]] std::optional<Reason> fired() const;

 private:
  void watch();

  std::function<bool()> stop_requested_;
  std::chrono::milliseconds poll_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  int socket_ = -1;
  Clock::time_point deadline_{};
  std::optional<Reason> fired_;
  bool quit_ = false;
  std::thread thread_;  // last: starts once every member above exists
};

}  // namespace etl::plugins::http
