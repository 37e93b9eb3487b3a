// LineReader over a pipe: line breaks, CRLF, a last line without a break, long lines cut and
// flagged with reading going on, and lines split across reads.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "line_reader.hpp"

namespace etl::plugins::file_lines {
namespace {

std::vector<LineReader::Line> read_all(const std::string& input, std::size_t max_bytes) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  std::thread writer([&] {
    // In small pieces, so that lines cross reads.
    for (std::size_t i = 0; i < input.size(); i += 3) {
      EXPECT_GT(::write(fds[1], input.data() + i, std::min<std::size_t>(3, input.size() - i)), 0);
    }
    ::close(fds[1]);
  });
  LineReader reader(fds[0], max_bytes);
  std::vector<LineReader::Line> lines;
  while (auto line = reader.next()) lines.push_back(std::move(*line));
  writer.join();
  ::close(fds[0]);
  return lines;
}

TEST(LineReader, LinesWithLfCrlfAndNoFinalBreak) {
  const auto lines = read_all("a\r\nbb\n\nlast", 100);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].text, "a");
  EXPECT_EQ(lines[1].text, "bb");
  EXPECT_EQ(lines[2].text, "");
  EXPECT_EQ(lines[3].text, "last");
  EXPECT_EQ(lines[3].number, 4u);
  EXPECT_FALSE(lines[3].too_long);
}

TEST(LineReader, ALongLineIsFlaggedAndReadingGoesOn) {
  const auto lines = read_all("ok\n" + std::string(50, 'x') + "\nnext\n", 10);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(lines[1].too_long);
  EXPECT_EQ(lines[1].bytes, 50u);
  EXPECT_EQ(lines[1].text.size(), 10u);
  EXPECT_EQ(lines[2].text, "next");
  EXPECT_FALSE(lines[2].too_long);
}

TEST(LineReader, ExactlyTheLimitWithCrlfIsNotTooLong) {
  const auto lines = read_all("0123456789\r\n", 10);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_FALSE(lines[0].too_long);
  EXPECT_EQ(lines[0].text, "0123456789");
}

TEST(LineReader, EmptyInputHasNoLines) { EXPECT_TRUE(read_all("", 10).empty()); }

}  // namespace
}  // namespace etl::plugins::file_lines
