// Fuzzes the line splitter against a plain reference: whatever the bytes and however they are cut
// into chunks, the lines must be the input's non-empty lines, with '\r' before '\n' dropped.

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "line_splitter.hpp"

namespace {

std::vector<std::string> reference(const std::string& body) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start <= body.size()) {
    const auto end = body.find('\n', start);
    std::string line = body.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // The first two bytes choose the chunk size and the line limit; the rest is the body.
  const std::size_t chunk = 1 + data[0] % 64;
  const std::size_t limit = 1 + data[1] * 4;
  const std::string body(reinterpret_cast<const char*>(data + 2), size - 2);

  etl::plugins::http_newline::LineSplitter splitter(limit);
  std::vector<std::string> lines;
  bool too_long = false;
  try {
    for (std::size_t at = 0; at < body.size(); at += chunk) {
      splitter.feed(std::string_view(body).substr(at, chunk));
      while (auto line = splitter.next()) lines.push_back(*line);
    }
    if (auto last = splitter.finish()) lines.push_back(*last);
  } catch (const etl::plugins::http_newline::LineTooLong&) {
    too_long = true;
  }
  const auto expected = reference(body);
  if (too_long) {
    // Everything before the overlong line came out intact.
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i] != expected.at(i)) std::abort();
    }
    return 0;
  }
  for (const auto& line : lines) {
    if (line.size() > limit) std::abort();  // the limit is enforced
  }
  if (lines != expected) std::abort();
  return 0;
}
