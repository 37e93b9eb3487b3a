#pragma once
// The validate transform's rules, apart from the plugin: parsed from config, checked against
// one record, each failure naming the field and the rule.

#include <charconv>
#include <ctime>
#include <functional>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace etl::plugins::validate {

/// A calendar day as yyyymmdd, so that days compare as integers.
using Day = int;

/// Today's date, as yyyymmdd, in UTC (the default: one clock whatever TZ the host runs in, and
/// the one a database's `now() AT TIME ZONE 'UTC'` agrees with) or in the local time zone (TZ);
/// worked out again only when the clock has moved to another second (a validate transform asks
/// once per record). `now` is a seam for tests.
class CachedToday {
 public:
  explicit CachedToday(bool utc = true, std::time_t (*now)() = nullptr) : utc_(utc), now_(now) {}
  Day get();

 private:
  bool utc_;
  std::time_t (*now_)();
  std::time_t second_ = -1;
  Day day_ = 0;
};

/// Parses `text` as a date in strptime `format`; nullopt unless all of it is a real date
/// written exactly as the format writes it: 2023-02-30 is refused (the day must survive
/// normalization unchanged), and so are 1990-5-7, " 1990-05-07" and 990-05-17 (the text must be
/// what the date prints as, with four-digit years for %Y).
std::optional<Day> parse_day(const std::string& text, const std::string& format);

/// Whether `text` is an RFC 3339 date-time with its offset: 2026-12-01T17:45:00Z,
/// 2026-12-01T17:45:00.123+01:00 (a real date, hours 00-23, a leap second 60 allowed). Not: a
/// time without offset, "now", "epoch", "infinity", or a space instead of T.
bool is_rfc3339_timestamp(std::string_view text);

/// A bound on a date: "today", "yesterday", "tomorrow", or a date in the rule's format.
class DayBound {
 public:
  static DayBound parse(const std::string& text, const std::string& format);
  [[nodiscard]] Day resolve(Day today) const;
  [[nodiscard]] const std::string& text() const noexcept { return text_; }

 private:
  std::string text_;
  std::optional<int> offset_;
  std::optional<Day> fixed_;
};

/// What one failed rule says.
struct Failure {
  std::string code;     // "validate.<rule>"
  std::string message;  // names the field and the rule
};

/// The rules of one field.
class FieldRules {
 public:
  /// From the field's rule object (already checked against the schema); throws
  /// std::invalid_argument naming the rule for a bad regex or date.
  static FieldRules parse(std::string field, const nlohmann::json& rules);

  [[nodiscard]] const std::string& field() const noexcept { return field_; }

  /// Every rule the record's field breaks, in a fixed order (required, type, length, regex,
  /// enum, min/max, date, before/after). A missing or null field breaks only `required`.
  void check(const sdk::Record& record, Day today, std::vector<Failure>& failures) const;

 private:
  [[nodiscard]] std::string name() const { return "field \"" + field_ + "\""; }
  static std::string shown(const std::string& text) {
    return "\"" + (text.size() > 80 ? text.substr(0, 80) + "..." : text) + "\"";
  }

  static std::optional<double> number_of(const sdk::Value& value, const std::string& text);

  /// A typed value has its type; a string (from a text source) has it when its text parses so.
  [[nodiscard]] bool has_type(const sdk::Value& value, const std::string& text) const;

  std::string field_;
  bool required_ = false;
  std::optional<std::string> type_;
  std::optional<std::regex> regex_;
  std::string regex_text_;
  std::optional<double> min_, max_;
  std::optional<std::size_t> min_length_, max_length_;
  bool has_enum_ = false;
  std::vector<std::string> enum_;
  std::optional<std::string> date_format_;
  bool timestamp_ = false;
  std::optional<DayBound> before_, after_;
};

/// The rule object's schema (one field's rules).
nlohmann::json field_rules_schema();

}  // namespace etl::plugins::validate
