// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Typed field values: null, bool, int64, double, string (UTF-8), bytes and JSON.
///
/// Every value has one **text form**, so that string-only plugins and reporters keep working:
///
/// | type    | text form                                             | JSON form                  |
/// |---------|-------------------------------------------------------|----------------------------|
/// | null    | none (`text()` is nullopt; CSV writes an empty cell)  | `null`                     |
/// | boolean | `true` / `false`                                      | `true` / `false`           |
/// | integer | decimal, e.g. `-42`                                   | number                     |
/// | real    | shortest text that reads back equal, e.g. `0.1`, `1e+300`; `NaN`, `Infinity`, `-Infinity` | number, or that text as a string when not finite |
/// | string  | the string itself                                     | string                     |
/// | bytes   | `\x` and two lower-case hex digits per byte (PostgreSQL's bytea input form) | that text as a string |
/// | json    | compact JSON text (object or array)                   | the object or array itself |
///
/// Representation: a type tag, one 8-byte number and one std::string that holds a string,
/// the raw bytes or the JSON text. A string value is its std::string: the common case (text
/// fields, the tokens job) costs what a plain string costs, with no extra allocation.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "etl/sdk/version.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

enum class ValueType : std::uint8_t { null, boolean, integer, real, string, bytes, json };

/// Lower-case name used in configs and messages: "null", "boolean", "integer", "real", "string", "bytes", "json".
constexpr std::string_view to_string(ValueType type) noexcept {
  switch (type) {
    case ValueType::null: return "null";
    case ValueType::boolean: return "boolean";
    case ValueType::integer: return "integer";
    case ValueType::real: return "real";
    case ValueType::string: return "string";
    case ValueType::bytes: return "bytes";
    case ValueType::json: return "json";
  }
  return "null";
}

class Value {
 public:
  /// Null.
  Value() noexcept = default;
  Value(std::nullptr_t) noexcept {}  // NOLINT(google-explicit-constructor): `record.set("x", nullptr)`
  /// A UTF-8 string (the source checks the encoding; see Record).
  Value(std::string text) noexcept : type_(ValueType::string), text_(std::move(text)) {}  // NOLINT
  Value(std::string_view text) : type_(ValueType::string), text_(text) {}                // NOLINT
  Value(const char* text) : type_(ValueType::string), text_(text) {}                     // NOLINT
  /// Absent becomes null: the 0.x `std::optional<std::string>` field values convert.
  Value(std::optional<std::string> text) noexcept {  // NOLINT
    if (text) *this = Value(std::move(*text));
  }
  Value(bool flag) noexcept : type_(ValueType::boolean) { number_.flag = flag; }  // NOLINT
  Value(std::int64_t integer) noexcept : type_(ValueType::integer) { number_.integer = integer; }  // NOLINT
  Value(int integer) noexcept : Value(static_cast<std::int64_t>(integer)) {}  // NOLINT
  Value(double real) noexcept : type_(ValueType::real) { number_.real = real; }  // NOLINT

  static Value bytes(std::string raw) noexcept {
    Value value(std::move(raw));
    value.type_ = ValueType::bytes;
    return value;
  }
  /// `json_text` must be a JSON object or array; plugins that build JSON with nlohmann use
  /// `Value::json(document.dump())`.
  static Value json(std::string json_text) noexcept {
    Value value(std::move(json_text));
    value.type_ = ValueType::json;
    return value;
  }

  [[nodiscard]] ValueType type() const noexcept { return type_; }
  [[nodiscard]] bool is_null() const noexcept { return type_ == ValueType::null; }

  /// Typed access; each is only meaningful for its own type (else false / 0 / 0.0).
  [[nodiscard]] bool as_bool() const noexcept { return type_ == ValueType::boolean && number_.flag; }
  [[nodiscard]] std::int64_t as_int() const noexcept { return type_ == ValueType::integer ? number_.integer : 0; }
  [[nodiscard]] double as_real() const noexcept { return type_ == ValueType::real ? number_.real : 0.0; }
  /// The string, the raw bytes or the JSON text as stored; empty for the other types.
  [[nodiscard]] const std::string& stored_text() const noexcept { return text_; }

  /// The text form (see the table above); nullopt for null.
  [[nodiscard]] std::optional<std::string> text() const {
    switch (type_) {
      case ValueType::null: return std::nullopt;
      case ValueType::boolean: return std::string(number_.flag ? "true" : "false");
      case ValueType::integer: return std::to_string(number_.integer);
      case ValueType::real: return real_text(number_.real);
      case ValueType::string:
      case ValueType::json: return text_;
      case ValueType::bytes: return hex_text(text_);
    }
    return std::nullopt;
  }

  /// The text form without a copy when it is stored as is (string, json); nullopt otherwise.
  [[nodiscard]] std::optional<std::string_view> text_view() const noexcept {
    if (type_ == ValueType::string || type_ == ValueType::json) return std::string_view(text_);
    return std::nullopt;
  }

  /// The text form of a double: shortest round-trip form, or NaN / Infinity / -Infinity.
  static std::string real_text(double real) {
    if (std::isnan(real)) return "NaN";
    if (std::isinf(real)) return real > 0 ? "Infinity" : "-Infinity";
    char buffer[32];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, real).ptr;
    return std::string(buffer, end);
  }
  /// `\x` followed by two lower-case hex digits per byte.
  static std::string hex_text(std::string_view raw) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out = "\\x";
    out.reserve(2 + raw.size() * 2);
    for (const unsigned char byte : raw) {
      out.push_back(kDigits[byte >> 4]);
      out.push_back(kDigits[byte & 0xf]);
    }
    return out;
  }

  friend bool operator==(const Value& a, const Value& b) noexcept {
    if (a.type_ != b.type_) return false;
    switch (a.type_) {
      case ValueType::null: return true;
      case ValueType::boolean: return a.number_.flag == b.number_.flag;
      case ValueType::integer: return a.number_.integer == b.number_.integer;
      case ValueType::real: return a.number_.real == b.number_.real;
      default: return a.text_ == b.text_;
    }
  }

 private:
  ValueType type_ = ValueType::null;
  union Number {
    bool flag;
    std::int64_t integer;
    double real;
  } number_{};
  std::string text_;
};

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
