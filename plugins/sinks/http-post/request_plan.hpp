#pragma once
// What http-post sends for a record and what an answer means: pure logic, tested alone
// (tests/request_plan_test.cpp). Templates name record fields in braces, "{id}"; {_origin}
// and {_sequence} are the record's identity. In a URL each value is percent-encoded.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace etl::plugins::http_post {

class FieldTemplate {
 public:
  /// Throws std::invalid_argument for an unclosed or empty brace.
  explicit FieldTemplate(const std::string& text, bool url_encode = false) : url_encode_(url_encode) {
    std::string literal;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '{' && i + 1 < text.size() && text[i + 1] == '{') {
        literal += '{';
        ++i;
      } else if (text[i] == '}' && i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
      } else if (text[i] == '{') {
        const std::size_t close = text.find('}', i);
        if (close == std::string::npos) throw std::invalid_argument("unclosed { at character " + std::to_string(i + 1));
        if (close == i + 1) throw std::invalid_argument("empty {} at character " + std::to_string(i + 1));
        parts_.emplace_back(std::move(literal), text.substr(i + 1, close - i - 1));
        literal.clear();
        i = close;
      } else {
        literal += text[i];
      }
    }
    tail_ = std::move(literal);
  }

  bool empty() const { return parts_.empty() && tail_.empty(); }

  /// The text for `record`, or nullopt with `missing` set to the field it lacks.
  std::optional<std::string> expand(const sdk::Record& record, std::string& missing) const {
    std::string out;
    for (const auto& [literal, name] : parts_) {
      out += literal;
      std::optional<std::string> value;
      if (name == "_origin") {
        value = record.origin;
      } else if (name == "_sequence") {
        value = std::to_string(record.sequence);
      } else if (const sdk::Field* field = record.find(name)) {
        value = field->value.text();
      }
      if (!value) {
        missing = name;
        return std::nullopt;
      }
      out += url_encode_ ? percent_encode(*value) : *value;
    }
    return out + tail_;
  }

  static std::string percent_encode(const std::string& value) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (const unsigned char c : value) {
      if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
          c == '.' || c == '~') {
        out += static_cast<char>(c);
      } else {
        out += '%';
        out += hex[c >> 4];
        out += hex[c & 15];
      }
    }
    return out;
  }

 private:
  bool url_encode_;
  std::vector<std::pair<std::string, std::string>> parts_;  // literal before, field name
  std::string tail_;
};

/// What an HTTP status means for the record.
enum class Verdict { ok, rejected, retry };

inline Verdict classify_status(int status) {
  if (status >= 200 && status < 300) return Verdict::ok;
  // Timeout and rate limiting are the API's state, not the record's fault.
  if (status == 408 || status == 429 || status >= 500 || status < 200) return Verdict::retry;
  return Verdict::rejected;
}

/// Seconds a Retry-After header asks for (delta-seconds; an HTTP date is taken as "soon"
/// rather than trusted to a clock); nullopt when absent or not understood.
inline std::optional<double> retry_after_seconds(const std::string& header) {
  if (header.empty()) return std::nullopt;
  std::size_t used = 0;
  try {
    const long value = std::stol(header, &used);
    if (used == header.size() && value >= 0) return static_cast<double>(value);
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

/// The body's part of an outcome: JSON when it parses as JSON, else its text (cut at `limit`).
inline sdk::Value body_value(const std::string& body, std::size_t limit = 65536) {
  if (body.empty()) return sdk::Value();
  if (body.size() <= limit && nlohmann::json::accept(body)) return sdk::Value::json(body);
  if (body.size() <= limit) return sdk::Value(body);
  return sdk::Value(body.substr(0, limit) + "... (" + std::to_string(body.size()) + " bytes)");
}


}  // namespace etl::plugins::http_post
