#pragma once
// Decodes an HTTP response body and tells a complete body from one that ended early.
//
// Poco's own chunked stream treats a connection closed before the final 0-size chunk as a
// normal end of body, which would turn a truncated download into silently missing records.
// This code decodes the framing itself from the session's raw bytes so it can tell.
//
// BodyDecoder is the framing alone, fed whatever bytes arrived (no I/O, resumable at any byte):
// the source hands records on as soon as their bytes are in, and never blocks on a chunk
// header while holding records. BodyReader wraps it for pull-style reading.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace etl::plugins::http_newline {

class TruncatedBody : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class BodyDecoder {
 public:
  enum class Framing { content_length, chunked, until_close };

  explicit BodyDecoder(Framing framing, std::uint64_t content_length = 0)
      : framing_(framing), remaining_(content_length) {}

  /// Decodes `raw` (any piece of the bytes after the headers) and appends the body bytes in
  /// it to `body`; bytes after the end of the body are ignored. Throws std::runtime_error on
  /// a malformed chunked encoding.
  void feed(std::string_view raw, std::string& body) {
    switch (framing_) {
      case Framing::until_close:
        body.append(raw);
        total_ += raw.size();
        return;
      case Framing::content_length: {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(raw.size(), remaining_));
        body.append(raw.substr(0, n));
        remaining_ -= n;
        total_ += n;
        return;
      }
      case Framing::chunked:
        feed_chunked(raw, body);
        return;
    }
  }

  /// Whether the framing says the body is complete (never for until_close: only the close says).
  [[nodiscard]] bool complete() const noexcept {
    switch (framing_) {
      case Framing::content_length: return remaining_ == 0;
      case Framing::chunked: return state_ == State::done;
      case Framing::until_close: return false;
    }
    return false;
  }

  /// The peer closed the connection: throws TruncatedBody unless the body was complete.
  void closed() const {
    if (framing_ == Framing::until_close || complete()) return;
    if (framing_ == Framing::content_length) {
      throw TruncatedBody("the body ended after " + std::to_string(total_) + " of " + std::to_string(total_ + remaining_) +
                          " bytes (Content-Length)");
    }
    throw TruncatedBody("the body ended after " + std::to_string(total_) + " bytes, in the middle of a chunk (" +
                        where() + "): the chunked terminator never came");
  }

  /// Body bytes decoded so far.
  [[nodiscard]] std::uint64_t bytes_decoded() const noexcept { return total_; }

 private:
  enum class State { size_line, data, data_end, trailer, done };

  [[nodiscard]] const char* where() const {
    switch (state_) {
      case State::size_line: return "chunk size";
      case State::data: return "chunk data";
      case State::data_end: return "chunk end";
      case State::trailer: return "trailer";
      case State::done: return "done";
    }
    return "?";
  }

  void feed_chunked(std::string_view raw, std::string& body) {
    std::size_t at = 0;
    while (at < raw.size() && state_ != State::done) {
      if (state_ == State::data) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(raw.size() - at, remaining_));
        body.append(raw.substr(at, n));
        at += n;
        remaining_ -= n;
        total_ += n;
        if (remaining_ == 0) state_ = State::data_end;
        continue;
      }
      // A line of framing: collect it up to its '\n'.
      const char c = raw[at++];
      if (c != '\n') {
        if (line_.size() > 4096) throw std::runtime_error("malformed chunked encoding: overlong " + std::string(where()));
        line_.push_back(c);
        continue;
      }
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      end_of_line();
      line_.clear();
    }
  }

  void end_of_line() {
    switch (state_) {
      case State::data_end:
        if (!line_.empty()) throw std::runtime_error("malformed chunked encoding: data after a chunk");
        state_ = State::size_line;
        return;
      case State::size_line: {
        std::uint64_t size = 0;
        std::size_t digits = 0;
        for (const char c : line_) {
          int value = -1;
          if (c >= '0' && c <= '9') value = c - '0';
          else if (c >= 'a' && c <= 'f') value = c - 'a' + 10;
          else if (c >= 'A' && c <= 'F') value = c - 'A' + 10;
          else break;  // chunk extensions (";name=value") are ignored
          if (++digits > 15) throw std::runtime_error("malformed chunked encoding: chunk too large");
          size = size * 16 + static_cast<std::uint64_t>(value);
        }
        if (digits == 0) throw std::runtime_error("malformed chunked encoding: bad chunk size line");
        remaining_ = size;
        state_ = size == 0 ? State::trailer : State::data;
        return;
      }
      case State::trailer:
        if (line_.empty()) state_ = State::done;
        return;
      case State::data:
      case State::done:
        return;
    }
  }

  Framing framing_;
  std::uint64_t remaining_;
  std::uint64_t total_ = 0;
  State state_ = State::size_line;
  std::string line_;
};

/// Pull-style reading over BodyDecoder: reads raw bytes as needed.
class BodyReader {
 public:
  /// Reads up to `length` raw bytes after the response headers; 0 means the peer closed.
  using RawRead = std::function<int(char* buffer, std::size_t length)>;
  using Framing = BodyDecoder::Framing;

  BodyReader(RawRead raw, Framing framing, std::uint64_t content_length = 0)
      : raw_(std::move(raw)), decoder_(framing, content_length) {}

  /// Reads body bytes; returns 0 at the proper end of the body. Throws TruncatedBody when the
  /// connection closes before the framing says the body is complete.
  std::size_t read(char* buffer, std::size_t length) {
    while (decoded_.size() == taken_) {
      decoded_.clear();
      taken_ = 0;
      if (decoder_.complete()) return 0;
      const int n = raw_(raw_buffer_, std::min(sizeof raw_buffer_, length));
      if (n <= 0) {
        decoder_.closed();
        return 0;
      }
      decoder_.feed(std::string_view(raw_buffer_, static_cast<std::size_t>(n)), decoded_);
    }
    const std::size_t n = std::min(length, decoded_.size() - taken_);
    std::copy_n(decoded_.data() + taken_, n, buffer);
    taken_ += n;
    return n;
  }

  /// Body bytes delivered so far.
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return decoder_.bytes_decoded() - (decoded_.size() - taken_); }

 private:
  RawRead raw_;
  BodyDecoder decoder_;
  std::string decoded_;
  std::size_t taken_ = 0;
  char raw_buffer_[16 * 1024];
};

}  // namespace etl::plugins::http_newline
