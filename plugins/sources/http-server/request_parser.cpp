#include "request_parser.hpp"

#include <http_parser.h>

#include <algorithm>
#include <cctype>

namespace etl::plugins::http_server {

namespace {

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string trimmed(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return {};
  const auto end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

struct RequestParser::Impl {
  http_parser parser{};
  http_parser_settings settings{};
};

/// http-parser's callbacks, forwarding to the RequestParser in parser.data. A non-zero return
/// stops the parser with an error; pausing stops it where it is without one.
struct RequestParser::Callbacks {
  static RequestParser& self(http_parser* parser) { return *static_cast<RequestParser*>(parser->data); }

  static int message_begin(http_parser* parser) {
    RequestParser& p = self(parser);
    p.state_ = State::head;
    return 0;
  }
  static int url(http_parser* parser, const char* at, std::size_t length) {
    RequestParser& p = self(parser);
    p.head_bytes_ += length;
    if (p.head_bytes_ > p.limits_.max_head_bytes) return p.fail(431, "the request line and headers are longer than " + std::to_string(p.limits_.max_head_bytes) + " bytes"), 1;
    p.request_.target.append(at, length);
    return 0;
  }
  static int header_field(http_parser* parser, const char* at, std::size_t length) {
    RequestParser& p = self(parser);
    // A field can arrive in several pieces when the socket cuts it: ": " and CRLF are
    // counted once per header, not once per piece.
    const bool new_field = p.in_value_ || p.field_.empty();
    if (p.in_value_) p.header_done();
    p.head_bytes_ += length + (new_field ? 4 : 0);
    if (p.head_bytes_ > p.limits_.max_head_bytes) return p.fail(431, "the request line and headers are longer than " + std::to_string(p.limits_.max_head_bytes) + " bytes"), 1;
    p.field_.append(at, length);
    return 0;
  }
  static int header_value(http_parser* parser, const char* at, std::size_t length) {
    RequestParser& p = self(parser);
    p.head_bytes_ += length;
    if (p.head_bytes_ > p.limits_.max_head_bytes) return p.fail(431, "the request line and headers are longer than " + std::to_string(p.limits_.max_head_bytes) + " bytes"), 1;
    p.value_.append(at, length);
    p.in_value_ = true;
    return 0;
  }
  static int headers_complete(http_parser* parser) {
    RequestParser& p = self(parser);
    if (p.in_value_ || !p.field_.empty()) p.header_done();
    p.request_.method = http_method_str(static_cast<http_method>(parser->method));
    p.request_.major = parser->http_major;
    p.request_.minor = parser->http_minor;
    p.request_.keep_alive = http_should_keep_alive(parser) != 0;
    // (From this callback 1 and 2 mean "no body"; an error is any other value.)
    if (!p.headers_done()) return -1;
    if ((parser->flags & F_CONTENTLENGTH) != 0) p.declared_length_ = parser->content_length;
    p.request_.body_bytes = p.declared_length_;
    const bool body_follows = p.declared_length_ > 0 || (parser->flags & F_CHUNKED) != 0;
    if (p.declared_length_ > p.limits_.max_body_bytes) {
      // Not read: answered at once (413), and the connection closed after the answer.
      p.request_.too_large = true;
      p.request_.keep_alive = false;
      p.state_ = State::complete;
      http_parser_pause(parser, 1);
      return 0;
    }
    if (const std::string* expect = p.request_.header("expect"); expect != nullptr && body_follows) {
      if (lower(*expect) != "100-continue") return p.fail(417, "Expect: " + *expect + " is not supported"), -1;
      p.wants_continue_ = true;
    }
    p.state_ = body_follows ? State::body : p.state_;
    return 0;
  }
  static int body(http_parser* parser, const char* at, std::size_t length) {
    RequestParser& p = self(parser);
    p.wants_continue_ = false;  // the client sent the body without waiting
    if (p.request_.body.size() + length > p.limits_.max_body_bytes) {
      // A chunked body that outgrew the limit: answered 413, the rest not read.
      p.request_.too_large = true;
      p.request_.keep_alive = false;
      p.request_.body_bytes = p.request_.body.size() + length;
      p.request_.body.clear();
      p.state_ = State::complete;
      http_parser_pause(parser, 1);
      return 0;
    }
    p.request_.body.append(at, length);
    return 0;
  }
  static int message_complete(http_parser* parser) {
    RequestParser& p = self(parser);
    p.request_.keep_alive = http_should_keep_alive(parser) != 0;
    if (p.request_.body_bytes < p.request_.body.size()) p.request_.body_bytes = p.request_.body.size();
    p.state_ = State::complete;
    http_parser_pause(parser, 1);  // one request at a time: the next waits for next()
    return 0;
  }
};

RequestParser::RequestParser(Limits limits) : limits_(limits), impl_(std::make_unique<Impl>()) {
  http_parser_init(&impl_->parser, HTTP_REQUEST);
  impl_->parser.data = this;
  http_parser_settings_init(&impl_->settings);
  impl_->settings.on_message_begin = &Callbacks::message_begin;
  impl_->settings.on_url = &Callbacks::url;
  impl_->settings.on_header_field = &Callbacks::header_field;
  impl_->settings.on_header_value = &Callbacks::header_value;
  impl_->settings.on_headers_complete = &Callbacks::headers_complete;
  impl_->settings.on_body = &Callbacks::body;
  impl_->settings.on_message_complete = &Callbacks::message_complete;
}

RequestParser::~RequestParser() = default;

void RequestParser::fail(int status, std::string message) {
  if (state_ == State::error) return;
  state_ = State::error;
  error_status_ = status;
  error_message_ = std::move(message);
}

void RequestParser::header_done() {
  request_.headers.emplace_back(lower(field_), trimmed(value_));
  field_.clear();
  value_.clear();
  in_value_ = false;
}

bool RequestParser::headers_done() {
  if (request_.major != 1) {
    fail(505, "HTTP/" + std::to_string(request_.major) + "." + std::to_string(request_.minor) + " is not supported; use HTTP/1.1");
    return false;
  }
  const std::string* host = request_.header("host");
  if (request_.minor >= 1 && (host == nullptr || host->empty())) {
    fail(400, "an HTTP/1.1 request needs a Host header");
    return false;
  }
  int hosts = 0, lengths = 0;
  for (const auto& [name, value] : request_.headers) {
    hosts += name == "host";
    lengths += name == "content-length";
  }
  if (hosts > 1) {
    fail(400, "more than one Host header");
    return false;
  }
  if (lengths > 1) {
    fail(400, "more than one Content-Length header");
    return false;
  }
  if (const std::string* encoding = request_.header("transfer-encoding"); encoding != nullptr) {
    if (lengths > 0) {
      fail(400, "both Content-Length and Transfer-Encoding: the body's length is ambiguous");
      return false;
    }
    if (lower(trimmed(*encoding)) != "chunked") {
      fail(501, "Transfer-Encoding: " + *encoding + " is not supported (only chunked)");
      return false;
    }
  }
  const auto query = request_.target.find('?');
  request_.path = request_.target.substr(0, query);
  if (request_.path.empty() || request_.path.front() != '/') {
    fail(400, "the request target must be a path starting with /");
    return false;
  }
  return true;
}

std::size_t RequestParser::feed(const char* data, std::size_t size) {
  if (state_ == State::complete || state_ == State::error || size == 0) return 0;
  http_parser& parser = impl_->parser;
  const std::size_t used = http_parser_execute(&parser, &impl_->settings, data, size);
  const http_errno error = HTTP_PARSER_ERRNO(&parser);
  if (error == HPE_OK || error == HPE_PAUSED) return used;
  if (state_ == State::error) return used;  // a check of ours failed (status set)
  switch (error) {
    case HPE_HEADER_OVERFLOW: fail(431, "the request's headers are too large"); break;
    case HPE_INVALID_CONTENT_LENGTH: fail(400, "the Content-Length header is not a number"); break;
    case HPE_UNEXPECTED_CONTENT_LENGTH: fail(400, "conflicting Content-Length headers (or one beside Transfer-Encoding)"); break;
    case HPE_INVALID_TRANSFER_ENCODING: fail(501, "the Transfer-Encoding is not supported (only chunked)"); break;
    case HPE_INVALID_METHOD: fail(501, "the request's method is not supported"); break;
    case HPE_INVALID_VERSION: fail(505, "the request's HTTP version is not supported"); break;
    default: fail(400, std::string("malformed request: ") + http_errno_description(error)); break;
  }
  return used;
}

void RequestParser::end_of_stream() {
  if (state_ == State::head || state_ == State::body) fail(400, "the connection ended inside a request");
}

HttpRequest RequestParser::take() { return std::move(request_); }

void RequestParser::next() {
  request_ = HttpRequest{};
  field_.clear();
  value_.clear();
  in_value_ = false;
  head_bytes_ = 0;
  declared_length_ = 0;
  wants_continue_ = false;
  if (state_ == State::error) return;
  state_ = State::idle;
  http_parser_pause(&impl_->parser, 0);
}

}  // namespace etl::plugins::http_server
