#include "rules.hpp"

#include <cctype>

namespace etl::plugins::validate {

Day CachedToday::get() {
  const std::time_t now = now_ != nullptr ? now_() : std::time(nullptr);
  if (now != second_) {
    second_ = now;
    std::tm parts{};
    if (utc_) {
      gmtime_r(&now, &parts);
    } else {
      localtime_r(&now, &parts);
    }
    day_ = (parts.tm_year + 1900) * 10000 + (parts.tm_mon + 1) * 100 + parts.tm_mday;
  }
  return day_;
}

std::optional<Day> parse_day(const std::string& text, const std::string& format) {
  std::tm parts{};
  parts.tm_mday = 1;
  const char* end = strptime(text.c_str(), format.c_str(), &parts);
  if (end == nullptr || *end != '\0') return std::nullopt;
  std::tm normalized = parts;
  normalized.tm_isdst = 0;
  if (timegm(&normalized) == static_cast<std::time_t>(-1) && parts.tm_year != 69) return std::nullopt;
  if (normalized.tm_mday != parts.tm_mday || normalized.tm_mon != parts.tm_mon || normalized.tm_year != parts.tm_year) {
    return std::nullopt;
  }
  // Exactly as the format writes the date: no missing zeros, blanks or signs strptime lets by.
  const int year = parts.tm_year + 1900;
  if (format.find("%Y") != std::string::npos && (year < 1000 || year > 9999)) return std::nullopt;
  char written[128];
  const std::size_t length = std::strftime(written, sizeof written, format.c_str(), &normalized);
  if (length == 0 || std::string_view(written, length) != text) return std::nullopt;
  return year * 10000 + (parts.tm_mon + 1) * 100 + parts.tm_mday;
}

bool is_rfc3339_timestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  auto digits = [&](std::size_t at, std::size_t count) {
    if (at + count > text.size()) return -1;
    int value = 0;
    for (std::size_t i = at; i < at + count; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) return -1;
      value = value * 10 + (text[i] - '0');
    }
    return value;
  };
  if (text.size() < 20) return false;
  const int year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  const int hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (year < 0 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return false;
  if (text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':') return false;
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 60) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day < 1 || day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) return false;
  std::size_t at = 19;
  if (at < text.size() && text[at] == '.') {
    const std::size_t start = ++at;
    while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) ++at;
    if (at == start) return false;
  }
  if (at >= text.size()) return false;  // no offset
  if ((text[at] == 'Z' || text[at] == 'z') && at + 1 == text.size()) return true;
  if (text[at] != '+' && text[at] != '-') return false;
  const int offset_hours = digits(at + 1, 2), offset_minutes = digits(at + 4, 2);
  return at + 6 == text.size() && text[at + 3] == ':' && offset_hours >= 0 && offset_hours <= 23 && offset_minutes >= 0 &&
         offset_minutes <= 59;
}



DayBound DayBound::parse(const std::string& text, const std::string& format) {
  DayBound bound;
  bound.text_ = text;
  if (text == "today") {
    bound.offset_ = 0;
  } else if (text == "yesterday") {
    bound.offset_ = -1;
  } else if (text == "tomorrow") {
    bound.offset_ = 1;
  } else if (auto day = parse_day(text, format)) {
    bound.fixed_ = *day;
  } else {
    throw std::invalid_argument("\"" + text + "\" is not today, yesterday, tomorrow or a date in the format " + format);
  }
  return bound;
}

Day DayBound::resolve(Day today) const {
  if (fixed_) return *fixed_;
  if (*offset_ == 0) return today;
  std::tm parts{};
  parts.tm_year = today / 10000 - 1900;
  parts.tm_mon = today / 100 % 100 - 1;
  parts.tm_mday = today % 100 + *offset_;
  timegm(&parts);
  return (parts.tm_year + 1900) * 10000 + (parts.tm_mon + 1) * 100 + parts.tm_mday;
}


FieldRules FieldRules::parse(std::string field, const nlohmann::json& rules) {
  FieldRules parsed;
  parsed.field_ = std::move(field);
  parsed.required_ = rules.value("required", false);
  if (rules.contains("type")) parsed.type_ = rules.at("type").get<std::string>();
  if (rules.contains("regex")) {
    parsed.regex_text_ = rules.at("regex").get<std::string>();
    try {
      parsed.regex_.emplace(parsed.regex_text_, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("regex: " + std::string(e.what()));
    }
  }
  if (rules.contains("min")) parsed.min_ = rules.at("min").get<double>();
  if (rules.contains("max")) parsed.max_ = rules.at("max").get<double>();
  if (rules.contains("min_length")) parsed.min_length_ = rules.at("min_length").get<std::size_t>();
  if (rules.contains("max_length")) parsed.max_length_ = rules.at("max_length").get<std::size_t>();
  if (rules.contains("enum")) {
    parsed.has_enum_ = true;
    for (const auto& value : rules.at("enum")) {
      parsed.enum_.push_back(value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  if (rules.contains("date")) parsed.date_format_ = rules.at("date").get<std::string>();
  if (rules.contains("timestamp")) parsed.timestamp_ = true;
  for (const char* name : {"before", "after"}) {
    if (!rules.contains(name)) continue;
    if (!parsed.date_format_) parsed.date_format_ = "%Y-%m-%d";
    try {
      (std::string(name) == "before" ? parsed.before_ : parsed.after_) =
          DayBound::parse(rules.at(name).get<std::string>(), *parsed.date_format_);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(name) + ": " + e.what());
    }
  }
  return parsed;
}

void FieldRules::check(const sdk::Record& record, Day today, std::vector<Failure>& failures) const {
  const sdk::Value* value = record.get(field_);
  if (value == nullptr || value->is_null()) {
    if (required_) failures.push_back({"validate.required", name() + " is required"});
    return;
  }
  const std::optional<std::string> text = value->text();
  if (type_ && !has_type(*value, *text)) {
    failures.push_back({"validate.type", name() + " is not of type " + *type_ + ": " + shown(*text)});
    return;
  }
  const std::size_t length = sdk::utf8_length(*text);
  if (min_length_ && length < *min_length_) {
    failures.push_back({"validate.min_length", name() + " is shorter than " + std::to_string(*min_length_) +
                                                   " characters: " + shown(*text)});
  }
  if (max_length_ && length > *max_length_) {
    failures.push_back({"validate.max_length", name() + " is longer than " + std::to_string(*max_length_) +
                                                   " characters"});
  }
  if (regex_ && !std::regex_search(*text, *regex_)) {
    failures.push_back({"validate.regex", name() + " does not match " + regex_text_ + ": " + shown(*text)});
  }
  if (has_enum_ && std::find(enum_.begin(), enum_.end(), *text) == enum_.end()) {
    failures.push_back({"validate.enum", name() + " is not one of the allowed values: " + shown(*text)});
  }
  if (min_ || max_) {
    const std::optional<double> number = number_of(*value, *text);
    if (!number) {
      failures.push_back({"validate.type", name() + " is not a number: " + shown(*text)});
    } else if (min_ && *number < *min_) {
      failures.push_back({"validate.min", name() + " is less than " + sdk::Value::real_text(*min_) + ": " + *text});
    } else if (max_ && *number > *max_) {
      failures.push_back({"validate.max", name() + " is more than " + sdk::Value::real_text(*max_) + ": " + *text});
    }
  }
  if (timestamp_ && !is_rfc3339_timestamp(*text)) {
    failures.push_back({"validate.timestamp",
                        name() + " is not an RFC 3339 timestamp with an offset (e.g. 2026-12-01T17:45:00Z): " + shown(*text)});
  }
  if (date_format_) {
    const std::optional<Day> day = parse_day(*text, *date_format_);
    if (!day) {
      failures.push_back({"validate.date", name() + " is not a date in the format " + *date_format_ + ": " + shown(*text)});
    } else if (before_ && *day >= before_->resolve(today)) {
      failures.push_back({"validate.before", name() + " is not before " + before_->text() + ": " + *text});
    } else if (after_ && *day <= after_->resolve(today)) {
      failures.push_back({"validate.after", name() + " is not after " + after_->text() + ": " + *text});
    }
  }
}

std::optional<double> FieldRules::number_of(const sdk::Value& value, const std::string& text) {
  if (value.type() == sdk::ValueType::integer) return static_cast<double>(value.as_int());
  if (value.type() == sdk::ValueType::real) return value.as_real();
  if (value.type() != sdk::ValueType::string || text.empty()) return std::nullopt;
  double number = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return number;
}

bool FieldRules::has_type(const sdk::Value& value, const std::string& text) const {
  const std::string& type = *type_;
  const sdk::ValueType actual = value.type();
  if (type == "string") return actual == sdk::ValueType::string;
  if (type == "boolean") return actual == sdk::ValueType::boolean || (actual == sdk::ValueType::string && (text == "true" || text == "false"));
  if (type == "integer") {
    if (actual == sdk::ValueType::integer) return true;
    if (actual != sdk::ValueType::string || text.empty()) return false;
    std::int64_t number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    return error == std::errc() && end == text.data() + text.size();
  }
  if (type == "number") return number_of(value, text).has_value();
  if (type == "json") return actual == sdk::ValueType::json;
  if (type == "bytes") return actual == sdk::ValueType::bytes;
  return false;
}

nlohmann::json field_rules_schema() {
  return nlohmann::json::parse(R"({
    "type": "object",
    "additionalProperties": false,
    "properties": {
      "required": {"type": "boolean", "description": "The field must be present and not null."},
      "type": {"type": "string", "enum": ["string", "integer", "number", "boolean", "json", "bytes"],
               "description": "A string passes integer, number or boolean when its text parses as one."},
      "regex": {"type": "string", "description": "ECMAScript regular expression the text form must contain a match of (anchor it with ^...$)."},
      "min": {"type": "number"},
      "max": {"type": "number"},
      "min_length": {"type": "integer", "minimum": 0, "description": "In characters (code points)."},
      "max_length": {"type": "integer", "minimum": 0},
      "enum": {"type": "array", "minItems": 1, "description": "Allowed values, compared by text form."},
      "date": {"type": "string", "description": "strptime format the value must be a real date in, written exactly so, e.g. %Y-%m-%d (1990-5-7 is not)."},
      "timestamp": {"type": "string", "enum": ["rfc3339"], "description": "The value must be an RFC 3339 date-time with its offset, e.g. 2026-12-01T17:45:00Z."},
      "before": {"type": "string", "description": "today, yesterday, tomorrow or a date: the value must be earlier (default format %Y-%m-%d)."},
      "after": {"type": "string", "description": "today, yesterday, tomorrow or a date: the value must be later."}
    }
  })");
}

}  // namespace etl::plugins::validate
