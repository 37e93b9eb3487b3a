#pragma once
// FirstError: of the errors a sink's threads meet, the first, which the sink fails with.

#include <mutex>
#include <string>

namespace etl::plugins::postgres {

class FirstError {
 public:
  /// Keeps `message` unless an error was kept already.
  void record(const std::string& message) {
    std::lock_guard lock(mutex_);
    if (text_.empty()) text_ = message;
  }
  /// The first error, or empty.
  [[nodiscard]] std::string get() const {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  mutable std::mutex mutex_;
  std::string text_;
};

}  // namespace etl::plugins::postgres
