#include "http_response.hpp"

#include <nlohmann/json.hpp>

namespace etl::plugins::http_server {

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status >= 200 && status < 300 ? "OK" : "Unknown";
  }
}

std::string serialize(const HttpResponse& response, bool head, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " + reason_phrase(response.status) + "\r\n";
  // 204 carries no body and no Content-Length (RFC 9110, 8.6); every other answer says its length.
  const bool no_content = response.status == 204 || response.status == 304;
  if (!no_content) {
    if (!response.body.empty()) out += "Content-Type: " + response.content_type + "\r\n";
    out += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  }
  for (const auto& [name, value] : response.headers) out += name + ": " + value + "\r\n";
  if (!keep_alive || response.close) out += "Connection: close\r\n";
  out += "\r\n";
  if (!head && !no_content) out += response.body;
  return out;
}

HttpResponse error_response(int status, const std::string& message, const std::string& code) {
  HttpResponse response;
  response.status = status;
  response.body = nlohmann::json{{"error", message}, {"code", code}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  return response;
}

}  // namespace etl::plugins::http_server
