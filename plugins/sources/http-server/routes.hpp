#pragma once
// Routes of the http-server source and the answers it gives: pure logic, tested alone
// (tests/routes_test.cpp). A route is a method and a path pattern ("/hello/{username}"); each
// {name} segment matches one path segment, which becomes the record's field `name`.

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "etl/sdk.hpp"

namespace etl::plugins::http_server {

struct Route {
  std::string name;    // the record's _route field
  std::string method;  // GET, PUT, POST, ...
  std::vector<std::string> segments;  // literal, or {param}
  int ok_status = 200;

  /// Throws std::invalid_argument for a pattern that does not start with "/" or has an empty
  /// or malformed {} segment.
  static Route parse(std::string name, std::string method, const std::string& pattern, int ok_status);

  /// The path parameters when `path` matches (percent-decoded), else nullopt.
  std::optional<std::vector<std::pair<std::string, std::string>>> match(const std::string& path) const;

  static std::optional<std::string> percent_decode(const std::string& text);
};

/// The HTTP answer a record's final outcome stands for.
struct Answer {
  int status = 200;
  std::string body;  // JSON text, or empty (no body)
  /// Seconds a client should wait before it tries again (503), or 0.
  int retry_after = 0;
};

/// ok → the route's ok status with the outcome's detail as a JSON object (no body for 204, or
/// when the detail is empty); rejected → 404 (not_found), 409 (a unique or exclusion violation:
/// 23505, 23P01), 413 (a body over max_body_bytes), 400 otherwise with {"error", "code"};
/// failed → 503 with Retry-After, so that senders retry. What the database said stays in the
/// reports: a client is told the pipeline's own words and the code (a value the database refused
/// past the pipeline's rules is the rules' gap, and its text may name tables and values).
Answer answer_for(const sdk::Outcome& outcome, int ok_status, int retry_after = 2);

}  // namespace etl::plugins::http_server
