#pragma once
// The answers the http-server source sends, as bytes on the wire. Pure (tests/request_parser_test.cpp).

#include <string>
#include <utility>
#include <vector>

namespace etl::plugins::http_server {

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON text, or empty (no body)
  std::string content_type = "application/json";
  /// Further headers (Allow, Retry-After, ...).
  std::vector<std::pair<std::string, std::string>> headers;
  /// The connection ends after this answer (an error the stream cannot be read past, a stop).
  bool close = false;
};

/// The reason phrase of a status ("Not Found"); "Unknown" for one without.
const char* reason_phrase(int status);

/// Status line, headers (Content-Length always; Connection: close when `keep_alive` is false)
/// and, unless `head` (a HEAD request: the headers of the GET it stands for), the body.
std::string serialize(const HttpResponse& response, bool head, bool keep_alive);

/// {"error": message, "code": code} as an answer of `status`.
HttpResponse error_response(int status, const std::string& message, const std::string& code);

}  // namespace etl::plugins::http_server
