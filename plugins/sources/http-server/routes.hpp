#pragma once
// Routes of the http-server source and the answers it gives: pure logic, tested alone
// (tests/routes_test.cpp). A route is a method and a path pattern ("/hello/{username}"); each
// {name} segment matches one path segment, which becomes the record's field `name`.

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace etl::plugins::http_server {

struct Route {
  std::string name;    // the record's _route field
  std::string method;  // GET, PUT, POST, ...
  std::vector<std::string> segments;  // literal, or {param}
  int ok_status = 200;

  /// Throws std::invalid_argument for a pattern that does not start with "/" or has an empty
  /// or malformed {} segment.
  static Route parse(std::string name, std::string method, const std::string& pattern, int ok_status) {
    if (pattern.empty() || pattern.front() != '/') throw std::invalid_argument("a path pattern starts with /");
    Route route{std::move(name), std::move(method), {}, ok_status};
    std::string segment;
    for (std::size_t i = 1; i <= pattern.size(); ++i) {
      if (i == pattern.size() || pattern[i] == '/') {
        if (segment.front() == '{' && (segment.size() < 3 || segment.back() != '}')) {
          throw std::invalid_argument("malformed segment \"" + segment + "\"");
        }
        route.segments.push_back(segment);
        segment.clear();
      } else {
        segment += pattern[i];
      }
    }
    if (route.segments.size() == 1 && route.segments[0].empty()) route.segments.clear();  // "/"
    return route;
  }

  /// The path parameters when `path` matches (percent-decoded), else nullopt.
  std::optional<std::vector<std::pair<std::string, std::string>>> match(const std::string& path) const {
    std::vector<std::string> parts;
    std::string part;
    for (std::size_t i = 1; i <= path.size(); ++i) {
      if (i == path.size() || path[i] == '/') {
        parts.push_back(part);
        part.clear();
      } else {
        part += path[i];
      }
    }
    if (path.size() <= 1) parts.clear();
    if (parts.size() != segments.size()) return std::nullopt;
    std::vector<std::pair<std::string, std::string>> params;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      const std::string& pattern = segments[i];
      if (!pattern.empty() && pattern.front() == '{') {
        auto decoded = percent_decode(parts[i]);
        if (!decoded || decoded->empty()) return std::nullopt;
        params.emplace_back(pattern.substr(1, pattern.size() - 2), std::move(*decoded));
      } else if (pattern != parts[i]) {
        return std::nullopt;
      }
    }
    return params;
  }

  static std::optional<std::string> percent_decode(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] != '%') {
        out += text[i];
        continue;
      }
      if (i + 2 >= text.size()) return std::nullopt;
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      const int high = hex(text[i + 1]), low = hex(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    }
    return out;
  }
};

/// The HTTP answer a record's final outcome stands for.
struct Answer {
  int status = 200;
  std::string body;  // JSON text, or empty (no body)
};

/// ok → the route's ok status with the outcome's detail as a JSON object (no body for 204, or
/// when the detail is empty); rejected → 404 (not_found), 409 (a unique or exclusion
/// violation: 23505, 23P01), 413 (a body over max_body_bytes), 400 otherwise (bad input, a validation rule, a CHECK) with
/// {"error", "code"}; failed → 503, so that senders retry.
inline Answer answer_for(const sdk::Outcome& outcome, int ok_status) {
  if (outcome.status == sdk::Status::ok) {
    if (ok_status == 204 || outcome.detail.empty()) return {ok_status, ""};
    return {ok_status, sdk::to_json_object(outcome.detail).dump()};
  }
  const nlohmann::json error = {{"error", outcome.message}, {"code", outcome.code}};
  if (outcome.status == sdk::Status::failed) return {503, error.dump()};
  if (outcome.code == "not_found") return {404, error.dump()};
  if (outcome.code == "http.too_large") return {413, error.dump()};
  if (outcome.code == "23505" || outcome.code == "23P01" || outcome.code == "conflict") return {409, error.dump()};
  return {400, error.dump()};
}

}  // namespace etl::plugins::http_server
