#pragma once
// Splits a byte stream into lines, however the stream is cut into chunks.

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace etl::plugins::http_newline {

class LineTooLong : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Lines end at '\n'; a '\r' just before it is dropped, so "\r\n" works too. Empty lines are
/// skipped. The last line of a complete body may lack its '\n' (see finish()).
class LineSplitter {
 public:
  explicit LineSplitter(std::size_t max_line_bytes = 1 << 20) : max_line_bytes_(max_line_bytes) {}

  /// Appends bytes received from the stream.
  void feed(std::string_view bytes) {
    if (start_ != 0 && start_ == buffer_.size()) {
      buffer_.clear();
      start_ = 0;
    } else if (start_ > 65536 && start_ * 2 > buffer_.size()) {
      // Keep memory flat on long streams: drop what was already handed out.
      buffer_.erase(0, start_);
      start_ = 0;
    }
    buffer_.append(bytes);
  }

  /// The next complete, non-empty line, or nullopt when more bytes are needed.
  /// Throws LineTooLong when a line grows past the limit without ending.
  std::optional<std::string> next() {
    while (true) {
      const auto newline = buffer_.find('\n', start_);
      if (newline == std::string::npos) {
        if (buffer_.size() - start_ > max_line_bytes_) {
          throw LineTooLong("line " + std::to_string(lines_ + 1) + " is longer than " +
                            std::to_string(max_line_bytes_) + " bytes");
        }
        return std::nullopt;
      }
      std::size_t end = newline;
      if (end > start_ && buffer_[end - 1] == '\r') --end;
      const std::size_t begin = start_;
      start_ = newline + 1;
      if (end - begin > max_line_bytes_) {
        throw LineTooLong("line " + std::to_string(lines_ + 1) + " is longer than " +
                          std::to_string(max_line_bytes_) + " bytes");
      }
      if (end == begin) continue;
      ++lines_;
      return buffer_.substr(begin, end - begin);
    }
  }

  /// Call once the stream has ended completely: the unterminated last line, if any.
  std::optional<std::string> finish() {
    std::size_t end = buffer_.size();
    if (end > start_ && buffer_[end - 1] == '\r') --end;
    std::optional<std::string> last;
    if (end > start_) {
      last = buffer_.substr(start_, end - start_);
      ++lines_;
    }
    reset();
    return last;
  }

  /// Bytes of an unfinished line held back; a stream that ended early loses exactly these.
  [[nodiscard]] std::size_t partial_bytes() const noexcept { return buffer_.size() - start_; }

  /// Forgets buffered bytes (after a stream broke off).
  void reset() noexcept {
    buffer_.clear();
    start_ = 0;
  }

  /// Bytes the buffer holds allocated (for tests of memory use).
  [[nodiscard]] std::size_t buffer_capacity() const noexcept { return buffer_.capacity(); }

  /// Non-empty lines returned so far.
  [[nodiscard]] std::size_t lines() const noexcept { return lines_; }

 private:
  std::size_t max_line_bytes_;
  std::string buffer_;
  std::size_t start_ = 0;
  std::size_t lines_ = 0;
};

}  // namespace etl::plugins::http_newline
