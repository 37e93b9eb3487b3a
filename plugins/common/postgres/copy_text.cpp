#include "postgres/copy_text.hpp"

namespace etl::plugins::postgres {

std::optional<std::size_t> copy_error_line(std::string_view context, std::string_view relation) {
  const std::string prefix = "COPY " + std::string(relation) + ", line ";
  std::size_t at = 0;
  while (at < context.size()) {
    std::size_t end = context.find('\n', at);
    if (end == std::string_view::npos) end = context.size();
    const std::string_view line = context.substr(at, end - at);
    if (line.starts_with(prefix)) {
      const std::string_view digits = line.substr(prefix.size());
      std::size_t number = 0;
      const auto [stop, error] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
      const bool ends_well = stop == digits.data() + digits.size() || *stop == ',' || *stop == ':';
      if (error == std::errc() && stop != digits.data() && ends_well && number > 0) return number;
    }
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace etl::plugins::postgres
