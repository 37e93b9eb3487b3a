#pragma once
// Lines of a file descriptor in constant memory: a line longer than the limit is reported as
// such (its length known, its text not kept), and reading goes on at the next line.

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace etl::plugins::file_lines {

class LineReader {
 public:
  struct Line {
    std::string text;        // without the line break (LF or CRLF); cut at max_bytes when too long
    bool too_long = false;   // the line had more than max_bytes bytes
    std::size_t bytes = 0;   // its length in bytes, line break excluded
    std::uint64_t number = 0;
    std::uint64_t end_offset = 0;  // bytes of the input consumed up to the end of its line break
  };

  /// Reads `fd` from where it stands, which is byte `start_offset` of the input, after line
  /// `start_line` (a resumed run; zeros otherwise).
  LineReader(int fd, std::size_t max_bytes, std::uint64_t start_offset = 0, std::uint64_t start_line = 0)
      : fd_(fd), max_bytes_(max_bytes), buffer_offset_(start_offset), lines_(start_line) {}

  /// The next line, or nullopt at the end of the input. The last line needs no line break.
  /// Throws std::runtime_error naming errno when reading fails.
  std::optional<Line> next() {
    Line line;
    bool any = false;
    for (;;) {
      if (begin_ == end_) {
        if (eof_) break;
        fill();
        continue;
      }
      any = true;
      const char* start = buffer_ + begin_;
      const auto* newline = static_cast<const char*>(std::memchr(start, '\n', end_ - begin_));
      const std::size_t take = newline != nullptr ? static_cast<std::size_t>(newline - start) : end_ - begin_;
      append(line, std::string_view(start, take));
      begin_ += take;
      if (newline != nullptr) {
        ++begin_;
        line.end_offset = buffer_offset_ + begin_;
        return finish(line);
      }
    }
    if (!any) return std::nullopt;
    line.end_offset = buffer_offset_ + end_;
    return finish(line);
  }

 private:
  void append(Line& line, std::string_view part) {
    line.bytes += part.size();
    if (line.text.size() < max_bytes_ + 1) {
      line.text.append(part.substr(0, std::min(part.size(), max_bytes_ + 1 - line.text.size())));
    }
  }

  Line finish(Line& line) {
    // CRLF: the CR belongs to the line break. Counted here, once the whole line is known.
    // (A line cut for its length keeps its CR unseen: it is refused as too long anyway.)
    if (line.bytes == line.text.size() && !line.text.empty() && line.text.back() == '\r') {
      line.text.pop_back();
      --line.bytes;
    }
    line.too_long = line.bytes > max_bytes_;
    if (line.too_long) line.text.resize(max_bytes_);
    line.number = ++lines_;
    return std::move(line);
  }

  void fill() {
    buffer_offset_ += end_;
    begin_ = 0;
    end_ = 0;
    for (;;) {
      const ssize_t got = ::read(fd_, buffer_, sizeof buffer_);
      if (got > 0) {
        end_ = static_cast<std::size_t>(got);
        return;
      }
      if (got == 0) {
        eof_ = true;
        return;
      }
      if (errno != EINTR) throw std::runtime_error(std::string("read failed: ") + std::strerror(errno));
    }
  }

  int fd_;
  std::size_t max_bytes_;
  char buffer_[64 * 1024];
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::uint64_t buffer_offset_ = 0;  // input offset of buffer_[0]
  bool eof_ = false;
  std::uint64_t lines_ = 0;
};

}  // namespace etl::plugins::file_lines
