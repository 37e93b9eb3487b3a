#pragma once
// Column types a CSV file's columns may be declared as, and reading a field's text as one.
// Pure: tested alone (tests/column_types_test.cpp).

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace etl::plugins::csv_file {

enum class ColumnType { string, integer, real, boolean, date, json };

inline constexpr const char* kColumnTypeNames[] = {"string", "integer", "real", "boolean", "date", "json"};

inline std::optional<ColumnType> parse_column_type(std::string_view name) {
  for (int i = 0; i < 6; ++i) {
    if (name == kColumnTypeNames[i]) return static_cast<ColumnType>(i);
  }
  return std::nullopt;
}

/// YYYY-MM-DD naming a day that exists (2000-02-29 does, 2001-02-29 does not).
inline bool is_calendar_date(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  auto number = [&](std::size_t at, std::size_t length, int& out) {
    const auto [end, error] = std::from_chars(text.data() + at, text.data() + at + length, out);
    return error == std::errc() && end == text.data() + at + length;
  };
  int year = 0, month = 0, day = 0;
  if (!number(0, 4, year) || !number(5, 2, month) || !number(8, 2, day)) return false;
  if (month < 1 || month > 12 || day < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= kDays[month - 1] + (month == 2 && leap ? 1 : 0);
}

/// Reads the field's text as a value of `type` into `out`; or returns why it is not one.
inline std::optional<std::string> typed_value(ColumnType type, std::string_view text, sdk::Value& out) {
  switch (type) {
    case ColumnType::string:
      out = sdk::Value(std::string(text));
      return std::nullopt;
    case ColumnType::integer: {
      std::string_view digits = text;
      if (!digits.empty() && digits.front() == '+') digits.remove_prefix(1);
      std::int64_t value = 0;
      const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
      if (digits.empty() || error != std::errc() || end != digits.data() + digits.size()) {
        return std::string(error == std::errc::result_out_of_range ? "out of range for a 64-bit integer" : "not an integer");
      }
      out = sdk::Value(value);
      return std::nullopt;
    }
    case ColumnType::real: {
      double value = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
      if (text.empty() || error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
        return "not a finite number";
      }
      out = sdk::Value(value);
      return std::nullopt;
    }
    case ColumnType::boolean: {
      std::string lower;
      for (const char c : text) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
      if (lower == "true" || lower == "t" || lower == "yes" || lower == "y" || lower == "1") {
        out = sdk::Value(true);
        return std::nullopt;
      }
      if (lower == "false" || lower == "f" || lower == "no" || lower == "n" || lower == "0") {
        out = sdk::Value(false);
        return std::nullopt;
      }
      return "not a boolean (true/false, t/f, yes/no, 1/0)";
    }
    case ColumnType::date:
      if (!is_calendar_date(text)) return "not a date (YYYY-MM-DD, a day that exists)";
      out = sdk::Value(std::string(text));
      return std::nullopt;
    case ColumnType::json:
      if (!nlohmann::json::accept(text)) return "not JSON";
      out = sdk::Value::json(std::string(text));
      return std::nullopt;
  }
  return "unknown type";
}

}  // namespace etl::plugins::csv_file
