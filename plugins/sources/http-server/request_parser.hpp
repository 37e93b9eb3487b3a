#pragma once
// RequestParser: the requests arriving on one connection, from the bytes as they come, with
// the limits and checks a server owes its clients. Framing is nodejs' http-parser (Debian's
// libhttp-parser, the parser Node.js used for a decade): request line, headers, Content-Length
// and chunked bodies, keep-alive. What it leaves to the server is checked here: the size of the
// head and of the body, a Host header for HTTP/1.1, and one framing per request (two different
// Content-Length headers, or one beside Transfer-Encoding, are refused rather than guessed).
// Pure: no I/O, tested alone (tests/request_parser_test.cpp).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace etl::plugins::http_server {

/// One request, complete.
struct HttpRequest {
  std::string method;  // "GET", "HEAD", "PUT", ...
  std::string target;  // as sent, e.g. "/hello/ann?x=1"
  std::string path;    // the target without its query
  int major = 1, minor = 1;
  /// Header names lower-cased, values as sent (without surrounding blanks), in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// The body was larger than the limit: it was not kept (and not read to its end).
  bool too_large = false;
  std::uint64_t body_bytes = 0;  // what the client declared or sent
  /// The client asked to keep the connection for another request.
  bool keep_alive = true;

  /// The value of header `name` (lower case), or nullptr.
  [[nodiscard]] const std::string* header(std::string_view name) const;
};

class RequestParser {
 public:
  struct Limits {
    std::size_t max_head_bytes = 16384;        // request line and headers
    std::uint64_t max_body_bytes = 1048576;
  };
  enum class State {
    idle,      // between requests: nothing of the next one yet
    head,      // in the request line or the headers
    body,      // in the body
    complete,  // a request is complete: take() it, then next()
    error,     // the stream cannot be read on: answer error_status() and close
  };

  explicit RequestParser(Limits limits);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  /// Reads as much of `data` as belongs to the current request; returns how many bytes were
  /// used. Stops once a request is complete (the bytes after it are the caller's to feed again
  /// after next()), or at an error.
  std::size_t feed(const char* data, std::size_t size);
  /// The peer closed its side: an error when a request was under way.
  void end_of_stream();

  [[nodiscard]] State state() const noexcept { return state_; }
  /// The head is complete, the client sent `Expect: 100-continue` and a body is to come: the
  /// server says 100 Continue (once) before the client sends it.
  [[nodiscard]] bool wants_continue() const noexcept { return wants_continue_; }
  void continue_sent() noexcept { wants_continue_ = false; }
  /// The body declared by Content-Length (0 for chunked or none).
  [[nodiscard]] std::uint64_t declared_length() const noexcept { return declared_length_; }

  /// The complete request (state complete).
  [[nodiscard]] HttpRequest take();
  /// Ready for the next request on the same connection.
  void next();

  /// state error: the status to answer (400, 413, 431, 501, 505) and why.
  [[nodiscard]] int error_status() const noexcept { return error_status_; }
  [[nodiscard]] const std::string& error_message() const noexcept { return error_message_; }

 private:
  struct Callbacks;
  void fail(int status, std::string message);
  void header_done();
  bool headers_done();

  Limits limits_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  State state_ = State::idle;
  HttpRequest request_;
  std::string field_, value_;
  bool in_value_ = false;
  std::size_t head_bytes_ = 0;
  std::uint64_t declared_length_ = 0;
  bool wants_continue_ = false;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace etl::plugins::http_server
