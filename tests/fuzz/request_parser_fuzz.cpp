// Fuzzes http-server's RequestParser against what a server relies on: however the socket cuts
// the bytes, the parser reads the same requests and fails or not alike (the cut is a
// transport detail; which of two errors is met first may depend on it: a header line both too
// long and malformed is 431 or 400 by where the read ended, and both answers are right); feed() never claims more bytes than it was given; a request's body is
// never larger than its limit or than the bytes sent; an error always carries a status a
// server can answer (4xx/5xx) and a reason.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "request_parser.hpp"

namespace {

using etl::plugins::http_server::HttpRequest;
using etl::plugins::http_server::RequestParser;

struct Outcome {
  std::vector<std::string> requests;  // method, target, body size and keep-alive of each
  int error_status = 0;
  bool same_as(const Outcome& other) const {
    return requests == other.requests && (error_status != 0) == (other.error_status != 0);
  }
};

/// Feeds `wire` in pieces of at most `cut` bytes, as a connection would, then end of stream.
Outcome parse(const std::string& wire, std::size_t cut, const RequestParser::Limits& limits) {
  RequestParser parser(limits);
  Outcome outcome;
  std::size_t at = 0;
  std::string pending;
  auto drain = [&] {
    while (!pending.empty() && parser.state() != RequestParser::State::error) {
      const std::size_t used = parser.feed(pending.data(), pending.size());
      if (used > pending.size()) std::abort();
      pending.erase(0, used);
      if (parser.state() == RequestParser::State::complete) {
        const HttpRequest request = parser.take();
        if (request.body.size() > limits.max_body_bytes) std::abort();
        if (request.body.size() > wire.size()) std::abort();
        outcome.requests.push_back(request.method + ' ' + request.target + ' ' + std::to_string(request.body.size()) +
                                   (request.too_large ? " too-large" : "") + (request.keep_alive ? " keep" : " close"));
        if (request.too_large || !request.keep_alive) return false;  // the server closes here
        parser.next();
      } else if (used == 0) {
        break;  // wants more bytes
      }
    }
    return parser.state() != RequestParser::State::error;
  };
  while (at < wire.size()) {
    const std::size_t n = std::min(cut, wire.size() - at);
    pending.append(wire, at, n);
    at += n;
    if (!drain()) break;
  }
  if (parser.state() != RequestParser::State::error && parser.state() != RequestParser::State::complete) parser.end_of_stream();
  if (parser.state() == RequestParser::State::error) {
    outcome.error_status = parser.error_status();
    if (outcome.error_status < 400 || outcome.error_status > 599) std::abort();
    if (parser.error_message().empty()) std::abort();
  }
  return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t cut = 1 + data[0] % 64;
  RequestParser::Limits limits;
  limits.max_head_bytes = 64 + (data[1] % 16) * 64;
  limits.max_body_bytes = (data[1] / 16) * 256;
  const std::string wire(reinterpret_cast<const char*>(data + 2), size - 2);
  const Outcome whole = parse(wire, wire.size() + 1, limits);
  const Outcome cut_up = parse(wire, cut, limits);
  if (!whole.same_as(cut_up)) std::abort();
  return 0;
}
