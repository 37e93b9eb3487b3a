#include <gtest/gtest.h>

#include "body_reader.hpp"

namespace etl::plugins::http_newline {
namespace {

/// Raw bytes as a peer would send them, at most `step` bytes per read.
BodyReader::RawRead from(std::string wire, std::size_t step = 3) {
  auto state = std::make_shared<std::pair<std::string, std::size_t>>(std::move(wire), 0);
  return [state, step](char* buffer, std::size_t length) {
    auto& [data, at] = *state;
    const std::size_t n = std::min({length, step, data.size() - at});
    data.copy(buffer, n, at);
    at += n;
    return static_cast<int>(n);
  };
}

std::string read_all(BodyReader& reader) {
  std::string body;
  char buffer[5];
  while (const std::size_t n = reader.read(buffer, sizeof buffer)) body.append(buffer, n);
  return body;
}

TEST(BodyReader, ContentLength) {
  BodyReader complete(from("abc\ndef\n"), BodyReader::Framing::content_length, 8);
  EXPECT_EQ(read_all(complete), "abc\ndef\n");
  BodyReader truncated(from("abc\nde"), BodyReader::Framing::content_length, 8);
  EXPECT_THROW(read_all(truncated), TruncatedBody);
}

TEST(BodyReader, ContentLengthStopsAtTheLength) {
  BodyReader reader(from("abcXYZ"), BodyReader::Framing::content_length, 3);
  EXPECT_EQ(read_all(reader), "abc");
}

TEST(BodyReader, Chunked) {
  BodyReader reader(from("4\r\nabc\n\r\nA;ext=1\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n"),
                    BodyReader::Framing::chunked);
  EXPECT_EQ(read_all(reader), "abc\n0123456789");
  EXPECT_EQ(reader.bytes_read(), 14u);
}

TEST(BodyReader, ChunkedWithoutTerminatorIsTruncated) {
  for (const std::string wire : {"4\r\nabc\n\r\n", "4\r\nabc\n\r\n3\r\nde", "4\r\nab", "4\r\nabc\n\r\n0\r\n"}) {
    BodyReader reader(from(wire), BodyReader::Framing::chunked);
    EXPECT_THROW(read_all(reader), TruncatedBody) << wire;
  }
}

TEST(BodyReader, MalformedChunkSize) {
  BodyReader reader(from("zz\r\nabc\r\n"), BodyReader::Framing::chunked);
  EXPECT_THROW(read_all(reader), std::runtime_error);
}

TEST(BodyReader, UntilClose) {
  BodyReader reader(from("anything\nat all"), BodyReader::Framing::until_close);
  EXPECT_EQ(read_all(reader), "anything\nat all");
}

}  // namespace
}  // namespace etl::plugins::http_newline
