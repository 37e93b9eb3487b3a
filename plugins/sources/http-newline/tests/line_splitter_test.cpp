#include <gtest/gtest.h>

#include <algorithm>

#include "line_splitter.hpp"

namespace etl::plugins::http_newline {
namespace {

std::vector<std::string> split(const std::string& body, std::size_t chunk_size, bool complete = true) {
  LineSplitter splitter(64);
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < body.size(); at += chunk_size) {
    splitter.feed(std::string_view(body).substr(at, chunk_size));
    while (auto line = splitter.next()) lines.push_back(*line);
  }
  if (complete) {
    if (auto last = splitter.finish()) lines.push_back(*last);
  }
  return lines;
}

TEST(LineSplitter, SameLinesWhateverTheChunkSize) {
  const std::string body = "alpha\nbeta\r\n\ngamma\r\n\r\ndelta";
  const std::vector<std::string> expected = {"alpha", "beta", "gamma", "delta"};
  for (std::size_t chunk = 1; chunk <= body.size(); ++chunk) {
    EXPECT_EQ(split(body, chunk), expected) << "chunk size " << chunk;
  }
}

TEST(LineSplitter, FinalNewlineIsOptional) {
  EXPECT_EQ(split("a\nb\n", 3), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(split("a\nb", 3), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(split("", 3), std::vector<std::string>{});
  EXPECT_EQ(split("\n\r\n\n", 1), std::vector<std::string>{});
}

TEST(LineSplitter, PartialLineIsHeldBackUntilFinish) {
  LineSplitter splitter;
  splitter.feed("one\ntw");
  EXPECT_EQ(splitter.next(), "one");
  EXPECT_EQ(splitter.next(), std::nullopt);
  EXPECT_EQ(splitter.partial_bytes(), 2u);
  splitter.reset();  // the stream broke off: the partial line is dropped, never yielded
  EXPECT_EQ(splitter.finish(), std::nullopt);
}

TEST(LineSplitter, CarriageReturnSplitFromItsNewline) {
  EXPECT_EQ(split("abc\r\ndef\r\n", 4), (std::vector<std::string>{"abc", "def"}));
}

TEST(LineSplitter, KeepsBytesItDoesNotUnderstand) {
  const std::string body = std::string("nul\0byte\n", 9) + "\xff\xfe\n";
  const auto lines = split(body, 2);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], std::string("nul\0byte", 8));
  EXPECT_EQ(lines[1], "\xff\xfe");
}

TEST(LineSplitter, OverlongLineIsAnError) {
  LineSplitter splitter(8);
  splitter.feed("short\n0123456789");
  EXPECT_EQ(splitter.next(), "short");
  EXPECT_THROW(splitter.next(), LineTooLong);
  LineSplitter exact(8);
  exact.feed("01234567\n");
  EXPECT_EQ(exact.next(), "01234567");
}

TEST(LineSplitter, LongStreamsKeepMemoryFlat) {
  // Chunks that end mid-line, as socket reads do: the buffer never empties completely, so
  // only dropping what was handed out keeps it small.
  LineSplitter splitter;
  std::size_t lines = 0;
  std::size_t largest = 0;
  const std::string chunk = std::string(2000, 'x') + "\nUNFvwishxzYsXUUchI4NBw\nhalf-a-li";
  const std::string rest = "ne\n";
  for (int i = 0; i < 20000; ++i) {
    splitter.feed(chunk);
    while (splitter.next()) ++lines;
    splitter.feed(rest);
    largest = std::max(largest, splitter.buffer_capacity());
  }
  while (splitter.next()) ++lines;
  EXPECT_EQ(lines, 20000u * 3);
  // 20,000 chunks of 2 KiB went through; what is held stays near the 64 KiB compaction point.
  EXPECT_LT(largest, 256u * 1024u) << "the buffer grew with the stream";
}

}  // namespace
}  // namespace etl::plugins::http_newline
