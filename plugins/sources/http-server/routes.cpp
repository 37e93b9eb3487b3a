#include "routes.hpp"

#include <cctype>

#include "etl/sdk/json.hpp"

namespace etl::plugins::http_server {

namespace {

/// A PostgreSQL error code: five characters of digits and upper-case letters, e.g. 22008.
bool is_sqlstate(const std::string& code) {
  if (code.size() != 5) return false;
  for (const char c : code) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && !std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string error_body(const std::string& message, const std::string& code) {
  return nlohmann::json{{"error", message}, {"code", code}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Route Route::parse(std::string name, std::string method, const std::string& pattern, int ok_status) {
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

std::optional<std::vector<std::pair<std::string, std::string>>> Route::match(const std::string& path) const {
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

std::optional<std::string> Route::percent_decode(const std::string& text) {
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

Answer answer_for(const sdk::Outcome& outcome, int ok_status, int retry_after) {
  if (outcome.status == sdk::Status::ok) {
    if (ok_status == 204 || outcome.detail.empty()) return {ok_status, "", 0};
    return {ok_status, sdk::to_json_object(outcome.detail).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 0};
  }
  if (outcome.status == sdk::Status::failed) {
    const std::string code = outcome.code.empty() ? std::string("unavailable") : outcome.code;
    const std::string message = code == "unavailable" ? "the service cannot store or read data right now; try again later"
                                : outcome.is_commit_unknown()
                                    ? "the outcome of the request is unknown (its database connection was lost); it may have been stored"
                                    : "the service could not complete the request; try again later";
    return {503, error_body(message, code), retry_after};
  }
  const bool from_database = outcome.stage == sdk::Stage::sink && is_sqlstate(outcome.code);
  if (outcome.code == "not_found") return {404, error_body(outcome.message, outcome.code), 0};
  if (outcome.code == "http.too_large") return {413, error_body(outcome.message, outcome.code), 0};
  if (outcome.code == "23505" || outcome.code == "23P01" || outcome.code == "conflict") {
    return {409, error_body(from_database ? "it exists already (a duplicate key)" : outcome.message, outcome.code), 0};
  }
  if (from_database) {
    return {400, error_body("the database refused a value of the request (SQLSTATE " + outcome.code + ")", outcome.code), 0};
  }
  return {400, error_body(outcome.message, outcome.code), 0};
}

}  // namespace etl::plugins::http_server
