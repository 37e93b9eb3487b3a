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

namespace etl::plugins::http_newline {

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

  ~RequestWatchdog() {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  /// Watches `socket` until disarm(): shuts it down once `deadline` passes or a stop is asked.
  /// The caller keeps the socket open until disarm() returns.
  void arm(int socket, Clock::time_point deadline) {
    {
      std::lock_guard lock(mutex_);
      socket_ = socket;
      deadline_ = deadline;
      fired_.reset();
    }
    wake_.notify_all();
  }

  /// Stops watching; after it returns the watchdog no longer touches the socket. Returns why
  /// it fired while armed, if it did.
  std::optional<Reason> disarm() {
    std::lock_guard lock(mutex_);
    socket_ = -1;
    return fired_;
  }

  /// Why it fired during the current (or last) arming, if it did.
  [[nodiscard]] std::optional<Reason> fired() const {
    std::lock_guard lock(mutex_);
    return fired_;
  }

 private:
  void watch() {
    std::unique_lock lock(mutex_);
    while (!quit_) {
      if (socket_ < 0 || fired_) {
        wake_.wait(lock, [this] { return quit_ || (socket_ >= 0 && !fired_); });
        continue;
      }
      wake_.wait_for(lock, std::min<Clock::duration>(poll_, std::max<Clock::duration>(
                                                                 deadline_ - Clock::now(), Clock::duration::zero())));
      if (quit_ || socket_ < 0 || fired_) continue;
      std::optional<Reason> reason;
      if (stop_requested_()) {
        reason = Reason::stopped;
      } else if (Clock::now() >= deadline_) {
        reason = Reason::deadline;
      }
      if (reason) {
        fired_ = reason;
        ::shutdown(socket_, SHUT_RDWR);
      }
    }
  }

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

}  // namespace etl::plugins::http_newline
