#pragma once
// COPY ... FROM STDIN in text format: how a row's values become one line, and which line a
// COPY error was about. Pure text handling, tested alone (tests/copy_text_test.cpp).
//
// Text rather than binary: PostgreSQL's own input function reads every value, so a value that
// does not fit its column's type is refused by the server with the same SQLSTATE and message as
// the per-row mode's parameters, and the sink needs no per-type encoders. Measured: the
// server-side parse is not what bounds a load (docs/performance.md, "Bulk loads").

#include <charconv>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace etl::plugins::postgres {

/// Appends `value` escaped for COPY's text format: backslash, tab, newline and carriage return
/// (the delimiter and the line ends) as backslash sequences. NUL cannot be sent at all; the
/// caller refuses such values first (RowPlan::value_text does).
inline void append_copy_value(std::string& out, std::string_view value) {
  std::size_t plain = 0;  // start of the run of characters that need no escape
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    const char* escape = c == '\\' ? "\\\\" : c == '\t' ? "\\t" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : nullptr;
    if (escape == nullptr) continue;
    out.append(value.data() + plain, i - plain);
    out.append(escape, 2);
    plain = i + 1;
  }
  out.append(value.data() + plain, value.size() - plain);
}

/// Writes one row's line into `out`: values separated by tabs, NULL as \N, ended by end().
/// (Upsert's staging table numbers its rows with a last column, ordinal().)
class CopyLineWriter {
 public:
  explicit CopyLineWriter(std::string& out) : out_(out) {}
  /// The next value; nullptr is NULL.
  void value(const std::string* text) {
    separate();
    if (text) {
      append_copy_value(out_, *text);
    } else {
      out_ += "\\N";
    }
  }
  void ordinal(std::size_t number) {
    separate();
    out_ += std::to_string(number);
  }
  void end() { out_ += '\n'; }

 private:
  void separate() {
    if (!first_) out_ += '\t';
    first_ = false;
  }
  std::string& out_;
  bool first_ = true;
};

/// The line number (1-based) a COPY error's context names for `relation`, e.g. 3 for
/// `COPY customers, line 3, column born: "1999-02-30"`. The context may hold several lines (a
/// trigger's error adds its own); the one that starts with "COPY <relation>, line " is read.
/// nullopt when there is none: a server whose messages are translated (lc_messages), or an error
/// not tied to a row. The caller then finds the row by bisection.
std::optional<std::size_t> copy_error_line(std::string_view context, std::string_view relation);

}  // namespace etl::plugins::postgres
