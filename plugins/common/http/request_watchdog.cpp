#include "http/request_watchdog.hpp"

#include <sys/socket.h>

namespace etl::plugins::http {


RequestWatchdog::~RequestWatchdog() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RequestWatchdog::arm(int socket, Clock::time_point deadline) {
  {
    std::lock_guard lock(mutex_);
    socket_ = socket;
    deadline_ = deadline;
    fired_.reset();
  }
  wake_.notify_all();
}

std::optional<RequestWatchdog::Reason> RequestWatchdog::disarm() {
  std::lock_guard lock(mutex_);
  socket_ = -1;
  return fired_;
}

std::optional<RequestWatchdog::Reason> RequestWatchdog::fired() const {
  std::lock_guard lock(mutex_);
  return fired_;
}

void RequestWatchdog::watch() {
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

}  // namespace etl::plugins::http
