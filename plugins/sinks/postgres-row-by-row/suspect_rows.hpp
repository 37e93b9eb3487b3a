#pragma once
// SuspectRows: commit: batch (insert) guesses, from the table's definition, which rows the
// server will refuse, before they are sent. Pure logic over COPY text lines, tested alone
// (tests/suspect_rows_test.cpp); table_facts.hpp reads the definition from the catalog.
//
// Why: a bad row inside a COPY costs the rows before it in its piece (loaded, undone, loaded
// again) and an exchange with the server to learn of it. A row suspected in advance is kept out
// of the batch's COPY and inserted afterwards with the batch's other suspects in one statement
// that tries each alone on the server (pg_temp.etl_insert_each, BatchSteps::load_each): the
// COPY then meets no bad row, and the bad rows cost no exchange of their own.
//
// A guess never decides an outcome: the server does, for every row, suspected or not. A wrong
// guess costs time only: a good row suspected is inserted alone (some 10 µs on the server), a bad
// row not suspected is found by the COPY as before. So every check here errs towards
// suspicion, and a row is suspected when a mapped value
//   - is NULL in a NOT NULL column;
//   - does not look like its column's type in the plainest spelling (integers and decimals in
//     digits, dates as YYYY-MM-DD that exist, booleans as t/f/true/false), or is longer than
//     its varchar(n)/char(n), or has more integer digits than its numeric(p, s) holds;
//   - fails a CHECK of the form `column <op> number` (other CHECKs are not guessed);
//   - repeats the key of a unique index (all columns mapped, no expression, no predicate) seen
//     earlier in the run: remembered in Bloom filters, two generations of kFilterBits bits,
//     so memory stays flat (4 MiB) whatever the length of the run and a key is remembered for
//     at least kGenerationKeys rows after it.
// When suspects prove mostly good (fewer than 1 in 20 of the first kJudgedSuspects refused: a
// date column written in another style, say), guessing stops for the rest of the run.

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace etl::plugins::postgres {

/// How a mapped column's values are checked (TableFacts gives one per mapped column).
enum class ValueKind { any, int16, int32, int64, decimal, date, boolean, text };

struct ColumnFacts {
  ValueKind kind = ValueKind::any;
  bool not_null = false;
  /// text: the most characters it holds (varchar(n), char(n)); decimal: the most digits before
  /// the point (numeric(p, s): p - s). 0: no limit.
  std::size_t limit = 0;
};

/// A CHECK of the form `column <op> number`, over a mapped column.
struct SimpleCheck {
  std::size_t column = 0;  // index among the mapped columns
  std::string op;          // one of < <= > >= = <>
  double bound = 0;
};

/// What SuspectRows knows of the table, in the order of the mapped columns.
struct TableFacts {
  std::vector<ColumnFacts> columns;
  std::vector<SimpleCheck> checks;
  /// Unique keys whose columns are all mapped: indices among the mapped columns.
  std::vector<std::vector<std::size_t>> unique_keys;
  /// Unique keys that treat NULLs as equal (PostgreSQL 15's NULLS NOT DISTINCT), by index.
  std::vector<bool> nulls_equal;
};

namespace suspect_detail {

/// The fields of one COPY text line (no line end), still escaped; nullopt for \N.
inline void split_fields(std::string_view line, std::vector<std::optional<std::string_view>>& out) {
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

inline bool is_digits(std::string_view text) {
  if (text.empty()) return false;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

/// -?digits within [low, high]
inline bool plain_integer(std::string_view text, std::int64_t low, std::int64_t high) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  const bool all = end == text.data() + text.size() && error == std::errc();
  // from_chars takes a leading '-' only; "+1" and " 1" are suspected (the server may well take them)
  return all && !text.empty() && value >= low && value <= high;
}

/// -?digits(.digits)?, with at most `integer_digits` digits before the point (0: any number).
inline bool plain_decimal(std::string_view text, std::size_t integer_digits) {
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
inline bool plain_date(std::string_view text) {
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

inline bool plain_boolean(std::string_view text) {
  return text == "t" || text == "f" || text == "true" || text == "false";
}

/// Characters (UTF-8 code points) in an escaped COPY value: escapes count twice, so a value
/// near its limit may be suspected in vain, never missed.
inline std::size_t characters(std::string_view text) {
  std::size_t count = 0;
  for (const char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

inline bool fits(const ColumnFacts& column, std::string_view text) {
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
inline double plain_number(std::string_view text) {
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
inline bool passes(const SimpleCheck& check, std::string_view value) {
  const double number = plain_number(value);
  const std::string& op = check.op;
  if (op == ">=") return number >= check.bound;
  if (op == ">") return number > check.bound;
  if (op == "<=") return number <= check.bound;
  if (op == "<") return number < check.bound;
  if (op == "=") return number == check.bound;
  return number != check.bound;
}

inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace suspect_detail

/// Parses `pg_get_constraintdef` of a CHECK constraint into a SimpleCheck over `columns` (the
/// mapped columns), when it has the form `column <op> number`, e.g. `CHECK ((amount >= (0)::numeric))`.
inline std::optional<SimpleCheck> parse_simple_check(const std::string& definition, const std::vector<std::string>& columns) {
  static const std::regex kForm(
      R"(^CHECK \(\(("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) (<=|>=|<>|<|>|=) \(?(-?[0-9]+(?:\.[0-9]+)?)\)?(?:::[a-z ]+)?\)\)$)");
  std::smatch match;
  if (!std::regex_match(definition, match, kForm)) return std::nullopt;
  std::string name = match[1];
  if (name.front() == '"') {
    std::string unquoted;
    for (std::size_t i = 1; i + 1 < name.size(); ++i) {
      unquoted += name[i];
      if (name[i] == '"') ++i;  // "" stands for "
    }
    name = unquoted;
  }
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return SimpleCheck{i, match[2], std::stod(match[3])};
  }
  return std::nullopt;
}

class SuspectRows {
 public:
  static constexpr std::size_t kFilterBits = std::size_t{1} << 24;  // 2 MiB per generation
  static constexpr std::size_t kGenerationKeys = kFilterBits / 10;  // ~1 % false suspects when full
  static constexpr int kHashes = 7;
  static constexpr std::uint64_t kJudgedSuspects = 2000;

  explicit SuspectRows(TableFacts facts) : facts_(std::move(facts)) {
    for (const auto& column : facts_.columns) checked_ = checked_ || column.kind != ValueKind::any || column.not_null;
    checked_ = checked_ || !facts_.checks.empty();
    if (!facts_.unique_keys.empty()) {
      current_.assign(kFilterBits / 64, 0);
      previous_.assign(kFilterBits / 64, 0);
    }
  }

  /// Whether there is anything to guess from.
  [[nodiscard]] bool useful() const { return checked_ || !facts_.unique_keys.empty(); }
  /// Whether guessing goes on (see `judge`).
  [[nodiscard]] bool active() const { return useful() && !given_up_.load(std::memory_order_relaxed); }

  /// Whether the row in `line` (a COPY text line without its end, of the mapped columns) is
  /// likely to be refused. Remembers its keys. One thread at a time.
  bool suspect(std::string_view line) {
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

  /// What became of suspects (from the writers' threads): when the first kJudgedSuspects show
  /// fewer than 1 in 20 refused, guessing stops. True when this call stopped it.
  bool judge(std::uint64_t suspects, std::uint64_t refused) {
    const std::uint64_t seen = judged_.fetch_add(suspects) + suspects;
    const std::uint64_t bad = refused_.fetch_add(refused) + refused;
    if (seen < kJudgedSuspects || bad * 20 >= seen || decided_.exchange(true)) return false;
    given_up_.store(true);
    return true;
  }

  [[nodiscard]] std::uint64_t suspected() const { return suspected_; }

 private:
  /// Adds the key's hash to the filters; whether it may have been there already. A key's bits
  /// all lie in one cache line of each filter (a blocked Bloom filter): a row costs one cache
  /// miss per generation, not one per bit.
  bool remember(std::uint64_t hash) {
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

  TableFacts facts_;
  bool checked_ = false;
  std::vector<std::optional<std::string_view>> fields_;
  std::vector<std::uint64_t> current_, previous_;
  std::size_t keys_in_current_ = 0;
  bool previous_used_ = false;  // (until the first generation is full, there is none to ask)
  std::uint64_t suspected_ = 0;
  std::atomic<std::uint64_t> judged_{0}, refused_{0};
  std::atomic<bool> decided_{false}, given_up_{false};
};

/// Appends the row in `line` (a COPY text line without its end) to `out` as one row of a
/// two-dimensional text[] literal, e.g. {"1","Ada",NULL}: what pg_temp.etl_insert_each takes.
inline void append_array_row(std::string& out, std::string_view line) {
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
