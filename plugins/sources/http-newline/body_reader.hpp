#pragma once
// Reads an HTTP response body and tells a complete body from one that ended early.
//
// Poco's own chunked stream treats a connection closed before the final 0-size chunk as a
// normal end of body, which would turn a truncated download into silently missing records.
// This reader decodes the framing itself from the session's raw bytes so it can tell.

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

namespace etl::plugins::http_newline {

class TruncatedBody : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class BodyReader {
 public:
  /// Reads up to `length` raw bytes after the response headers; 0 means the peer closed.
  using RawRead = std::function<int(char* buffer, std::size_t length)>;

  enum class Framing { content_length, chunked, until_close };

  BodyReader(RawRead raw, Framing framing, std::uint64_t content_length = 0)
      : raw_(std::move(raw)), framing_(framing), remaining_(content_length) {}

  /// Reads body bytes; returns 0 at the proper end of the body. Throws TruncatedBody when the
  /// connection closes before the framing says the body is complete.
  std::size_t read(char* buffer, std::size_t length) {
    switch (framing_) {
      case Framing::content_length: return read_fixed(buffer, length);
      case Framing::chunked: return read_chunked(buffer, length);
      case Framing::until_close: return read_raw(buffer, length);
    }
    return 0;
  }

  /// Body bytes delivered so far.
  [[nodiscard]] std::uint64_t bytes_read() const noexcept { return total_; }

 private:
  std::size_t read_raw(char* buffer, std::size_t length) {
    const int n = raw_(buffer, length);
    return n > 0 ? count(static_cast<std::size_t>(n)) : 0;
  }

  std::size_t count(std::size_t n) {
    if (framing_ != Framing::chunked) total_ += n;
    return n;
  }

  std::size_t read_fixed(char* buffer, std::size_t length) {
    if (remaining_ == 0) return 0;
    const std::size_t n = read_raw(buffer, static_cast<std::size_t>(std::min<std::uint64_t>(length, remaining_)));
    if (n == 0) {
      throw TruncatedBody("the body ended after " + std::to_string(total_) + " of " +
                          std::to_string(total_ + remaining_) + " bytes (Content-Length)");
    }
    remaining_ -= n;
    return n;
  }

  int get() {
    char c = 0;
    return read_raw(&c, 1) == 1 ? static_cast<unsigned char>(c) : -1;
  }

  std::string read_line(const char* what) {
    std::string line;
    while (true) {
      const int c = get();
      if (c < 0) throw truncated(what);
      if (c == '\n') break;
      if (line.size() > 4096) throw std::runtime_error("malformed chunked encoding: overlong " + std::string(what));
      line.push_back(static_cast<char>(c));
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
  }

  TruncatedBody truncated(const char* where) const {
    return TruncatedBody("the body ended after " + std::to_string(total_) +
                         " bytes, in the middle of a chunk (" + where +
                         "): the chunked terminator never came");
  }

  std::size_t read_chunked(char* buffer, std::size_t length) {
    if (chunk_done_) return 0;
    if (remaining_ == 0) {
      if (in_chunk_) {
        if (!read_line("chunk end").empty()) {
          throw std::runtime_error("malformed chunked encoding: data after a chunk");
        }
        in_chunk_ = false;
      }
      const std::string size_line = read_line("chunk size");
      std::uint64_t size = 0;
      std::size_t digits = 0;
      for (char c : size_line) {
        int value = -1;
        if (c >= '0' && c <= '9') value = c - '0';
        else if (c >= 'a' && c <= 'f') value = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') value = c - 'A' + 10;
        else break;  // chunk extensions (";name=value") are ignored
        if (++digits > 15) throw std::runtime_error("malformed chunked encoding: chunk too large");
        size = size * 16 + static_cast<std::uint64_t>(value);
      }
      if (digits == 0) throw std::runtime_error("malformed chunked encoding: bad chunk size line");
      if (size == 0) {
        while (!read_line("trailer").empty()) {
        }
        chunk_done_ = true;
        return 0;
      }
      remaining_ = size;
      in_chunk_ = true;
    }
    const std::size_t n = read_raw(buffer, static_cast<std::size_t>(std::min<std::uint64_t>(length, remaining_)));
    if (n == 0) throw truncated("chunk data");
    remaining_ -= n;
    total_ += n;
    return n;
  }

  RawRead raw_;
  Framing framing_;
  std::uint64_t remaining_;
  std::uint64_t total_ = 0;
  bool in_chunk_ = false;
  bool chunk_done_ = false;
};

}  // namespace etl::plugins::http_newline
