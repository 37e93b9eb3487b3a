#pragma once
// RFC 4180 field quoting.

#include <string>
#include <string_view>

namespace etl::plugins::csv {

/// Appends `value` to `line` as one CSV field: quoted when it holds a comma, a double quote,
/// CR or LF, or starts or ends with a space; double quotes inside are doubled.
inline void append_field(std::string& line, std::string_view value) {
  const bool needs_quotes = value.find_first_of(",\"\r\n") != std::string_view::npos ||
                            (!value.empty() && (value.front() == ' ' || value.back() == ' '));
  if (!needs_quotes) {
    line.append(value);
    return;
  }
  line += '"';
  for (char c : value) {
    if (c == '"') line += '"';
    line += c;
  }
  line += '"';
}

}  // namespace etl::plugins::csv
