#pragma once
// Values made safe to print one record per line on a terminal.

#include <string>
#include <string_view>

namespace etl::plugins::stdout_reporter {

/// Appends `value` to `out` with control characters escaped: C0 controls and DEL as \n, \r,
/// \t or \xNN, and the C1 controls U+0080..U+009F (CSI among them) as \u0080..\u009f. A value
/// with a newline would split its record over two lines, and ESC or CR would let a value
/// rewrite the OK/ERR column on a terminal. Everything else, invalid UTF-8 included, is kept.
inline void append_printable(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else if (c == 0xc2 && i + 1 < value.size() && static_cast<unsigned char>(value[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(value[i + 1]) <= 0x9f) {
      const auto code = static_cast<unsigned char>(value[++i]);
      out += "\\u00";
      out += kHex[code >> 4];
      out += kHex[code & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
}

}  // namespace etl::plugins::stdout_reporter
