#include "postgres/named_parameters.hpp"

#include <cctype>
#include <stdexcept>

namespace etl::plugins::postgres {

NamedStatement parse_named_parameters(std::string_view text) {
  NamedStatement out;
  auto is_name_start = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  auto is_name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\'' || c == '"') {
      const std::size_t end = text.find(c, i + 1);
      if (end == std::string_view::npos) throw std::invalid_argument(std::string("unterminated ") + c + " quote");
      out.sql.append(text.substr(i, end + 1 - i));
      i = end + 1;
    } else if (c == '-' && i + 1 < text.size() && text[i + 1] == '-') {
      const std::size_t end = text.find('\n', i);
      const std::size_t stop = end == std::string_view::npos ? text.size() : end;
      out.sql.append(text.substr(i, stop - i));
      i = stop;
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      const std::size_t end = text.find("*/", i + 2);
      if (end == std::string_view::npos) throw std::invalid_argument("unterminated /* comment");
      out.sql.append(text.substr(i, end + 2 - i));
      i = end + 2;
    } else if (c == '$' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
      throw std::invalid_argument("positional parameter $" + std::string(1, text[i + 1]) +
                                  ": name the field instead, e.g. $username");
    } else if (c == '$' && i + 1 < text.size() && (is_name_start(text[i + 1]) || text[i + 1] == '$')) {
      // $name, or a dollar quote $tag$...$tag$ / $$...$$.
      std::size_t end = i + 1;
      while (end < text.size() && is_name_char(text[end])) ++end;
      if (end < text.size() && text[end] == '$') {
        const std::string_view tag = text.substr(i, end + 1 - i);
        const std::size_t close = text.find(tag, end + 1);
        if (close == std::string_view::npos) throw std::invalid_argument("unterminated dollar quote " + std::string(tag));
        out.sql.append(text.substr(i, close + tag.size() - i));
        i = close + tag.size();
        continue;
      }
      const std::string name(text.substr(i + 1, end - i - 1));
      std::size_t index = 0;
      while (index < out.fields.size() && out.fields[index] != name) ++index;
      if (index == out.fields.size()) out.fields.push_back(name);
      out.sql += "$" + std::to_string(index + 1);
      i = end;
    } else {
      out.sql += c;
      ++i;
    }
  }
  return out;
}

}  // namespace etl::plugins::postgres
