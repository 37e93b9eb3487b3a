#include "suspect_rows.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace etl::plugins::postgres {

namespace suspect_detail {

/// The fields of one COPY text line (no line end), still escaped; nullopt for \N.
void split_fields(std::string_view line, std::vector<std::optional<std::string_view>>& out) {
  out.clear();
  std::size_t at = 0;
  while (true) {
    const std::size_t tab = line.find('\t', at);
    const std::string_view field = line.substr(at, tab == std::string_view::npos ? std::string_view::npos : tab - at);
    out.push_back(field == "\\N" ? std::nullopt : std::optional<std::string_view>(field));
    if (tab == std::string_view::npos) return;
    at = tab + 1;
  }
}

bool is_digits(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

/// -?digits within [low, high]
bool plain_integer(std::string_view text, std::int64_t low, std::int64_t high) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  const bool all = end == text.data() + text.size() && error == std::errc();
  // from_chars takes a leading '-' only; "+1" and " 1" are suspected (the server may well take them)
  return all && !text.empty() && value >= low && value <= high;
}

/// -?digits(.digits)?, with at most `integer_digits` digits before the point (0: any number).
bool plain_decimal(std::string_view text, std::size_t integer_digits) {
  if (text.starts_with('-')) text.remove_prefix(1);
  const std::size_t point = text.find('.');
  std::string_view whole = text.substr(0, point);
  if (!is_digits(whole)) return false;
  if (point != std::string_view::npos && !is_digits(text.substr(point + 1))) return false;
  while (whole.size() > 1 && whole.front() == '0') whole.remove_prefix(1);
  if (integer_digits == 0 || whole.size() < integer_digits) return true;
  // Rounding the fraction can carry into one more digit (99.999 in numeric(4, 2)): suspected.
  return whole.size() == integer_digits && (point == std::string_view::npos || whole.find_first_not_of('9') != std::string_view::npos);
}

/// YYYY-MM-DD, a day that exists (the one spelling every DateStyle reads the same way).
bool plain_date(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  if (!is_digits(text.substr(0, 4)) || !is_digits(text.substr(5, 2)) || !is_digits(text.substr(8, 2))) return false;
  const int year = (text[0] - '0') * 1000 + (text[1] - '0') * 100 + (text[2] - '0') * 10 + (text[3] - '0');
  const int month = (text[5] - '0') * 10 + (text[6] - '0');
  const int day = (text[8] - '0') * 10 + (text[9] - '0');
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  static constexpr std::array<int, 12> kDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return day <= (month == 2 && !leap ? 28 : kDays[static_cast<std::size_t>(month - 1)]);
}

bool plain_boolean(std::string_view text) {
  return text == "t" || text == "f" || text == "true" || text == "false";
}

/// Characters (UTF-8 code points) in an escaped COPY value: escapes count twice, so a value
/// near its limit may be suspected in vain, never missed.
std::size_t characters(std::string_view text) {
  std::size_t count = 0;
  for (const char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

bool fits(const ColumnFacts& column, std::string_view text) {
  switch (column.kind) {
    case ValueKind::any:
      return true;
    case ValueKind::int16:
      return plain_integer(text, -32768, 32767);
    case ValueKind::int32:
      return plain_integer(text, -2147483648LL, 2147483647LL);
    case ValueKind::int64:
      return plain_integer(text, INT64_MIN, INT64_MAX);
    case ValueKind::decimal:
      return plain_decimal(text, column.limit);
    case ValueKind::date:
      return plain_date(text);
    case ValueKind::boolean:
      return plain_boolean(text);
    case ValueKind::text:
      return column.limit == 0 || characters(text) <= column.limit;
  }
  return true;
}

/// The value of -?digits(.digits)? (fits() said it is one), near enough for a guess: a
/// library's exact parse costs more than the rest of a row's checks together.
double plain_number(std::string_view text) {
  const bool negative = text.starts_with('-');
  if (negative) text.remove_prefix(1);
  double number = 0, scale = 1;
  bool fraction = false;
  for (const char c : text) {
    if (c == '.') {
      fraction = true;
    } else {
      number = number * 10 + (c - '0');
      if (fraction) scale *= 10;
    }
  }
  return (negative ? -number : number) / scale;
}

/// Whether `value` (plainly numeric: fits() said so) passes `check`.
bool passes(const SimpleCheck& check, std::string_view value) {
  const double number = plain_number(value);
  const std::string& op = check.op;
  if (op == ">=") return number >= check.bound;
  if (op == ">") return number > check.bound;
  if (op == "<=") return number <= check.bound;
  if (op == "<") return number < check.bound;
  if (op == "=") return number == check.bound;
  return number != check.bound;
}

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace suspect_detail

SuspectRows::SuspectRows(TableFacts facts) : facts_(std::move(facts)) {
  for (const auto& column : facts_.columns) checked_ = checked_ || column.kind != ValueKind::any || column.not_null;
  checked_ = checked_ || !facts_.checks.empty();
  if (!facts_.unique_keys.empty()) {
    current_.assign(kFilterBits / 64, 0);
    previous_.assign(kFilterBits / 64, 0);
  }
}

bool SuspectRows::suspect(std::string_view line) {
  if (!active()) return false;
  suspect_detail::split_fields(line, fields_);
  if (fields_.size() != facts_.columns.size()) {  // (not a line of this table's)
    ++suspected_;
    return true;
  }
  bool suspected = false;
  for (std::size_t i = 0; i < fields_.size() && !suspected; ++i) {
    const ColumnFacts& column = facts_.columns[i];
    if (!fields_[i]) {
      suspected = column.not_null;
    } else {
      suspected = !suspect_detail::fits(column, *fields_[i]);
    }
  }
  for (std::size_t i = 0; i < facts_.checks.size() && !suspected; ++i) {
    const SimpleCheck& check = facts_.checks[i];
    const auto& value = fields_[check.column];
    suspected = value && !suspect_detail::passes(check, *value);
  }
  // Keys are remembered whatever the row's fate: of two rows with one key, the later is the
  // one the server refuses, and it is suspected only if the first one was remembered.
  for (std::size_t k = 0; k < facts_.unique_keys.size(); ++k) {
    std::uint64_t hash = suspect_detail::mix(k);
    bool has_null = false;
    for (const auto column : facts_.unique_keys[k]) {
      const auto& value = fields_[column];
      has_null = has_null || !value;
      hash = suspect_detail::mix(hash ^ (value ? std::hash<std::string_view>{}(*value) : 0x6e756c6cULL));
    }
    if (has_null && !(k < facts_.nulls_equal.size() && facts_.nulls_equal[k])) continue;  // NULLs never conflict
    suspected = remember(hash) || suspected;
  }
  if (suspected) ++suspected_;
  return suspected;
}

bool SuspectRows::judge(std::uint64_t suspects, std::uint64_t refused) {
  const std::uint64_t seen = judged_.fetch_add(suspects) + suspects;
  const std::uint64_t bad = refused_.fetch_add(refused) + refused;
  if (seen < kJudgedSuspects || bad * 20 >= seen || decided_.exchange(true)) return false;
  given_up_.store(true);
  return true;
}

bool SuspectRows::remember(std::uint64_t hash) {
  constexpr std::size_t kLineWords = 8;
  const std::size_t line = (hash % (kFilterBits / 512)) * kLineWords;
  const std::uint64_t bits = suspect_detail::mix(hash);
  bool in_current = true, in_previous = previous_used_;
  for (int i = 0; i < kHashes; ++i) {
    const std::uint64_t bit = (bits >> (9 * i)) & 511;
    const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
    std::uint64_t& word = current_[line + bit / 64];
    in_current = in_current && (word & mask) != 0;
    word |= mask;
    in_previous = in_previous && (previous_[line + bit / 64] & mask) != 0;
  }
  if (!in_current && ++keys_in_current_ >= kGenerationKeys) {
    previous_.swap(current_);
    std::fill(current_.begin(), current_.end(), 0);
    keys_in_current_ = 0;
    previous_used_ = true;
  }
  return in_current || in_previous;
}


void append_array_row(std::string& out, std::string_view line) {
  std::vector<std::optional<std::string_view>> fields;
  suspect_detail::split_fields(line, fields);
  out += '{';
  for (std::size_t f = 0; f < fields.size(); ++f) {
    if (f != 0) out += ',';
    if (!fields[f]) {
      out += "NULL";
      continue;
    }
    const std::string_view field = *fields[f];
    out += '"';
    for (std::size_t i = 0; i < field.size(); ++i) {
      char c = field[i];
      if (c == '\\' && i + 1 < field.size()) {  // COPY's escapes back to the character
        const char next = field[++i];
        c = next == 't' ? '\t' : next == 'n' ? '\n' : next == 'r' ? '\r' : next;
      }
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
}


}  // namespace etl::plugins::postgres
