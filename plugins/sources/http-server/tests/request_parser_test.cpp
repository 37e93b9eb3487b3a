// The request parser and the answers' bytes, without a socket.

#include <gtest/gtest.h>

#include "http_response.hpp"
#include "request_parser.hpp"

namespace etl::plugins::http_server {
namespace {

RequestParser::Limits limits(std::size_t head = 16384, std::uint64_t body = 1024) { return {head, body}; }

/// Feeds all of `text`, a byte at a time when `trickle` (every boundary a split can fall on).
RequestParser::State feed_all(RequestParser& parser, const std::string& text, bool trickle = false) {
  std::size_t at = 0;
  while (at < text.size() && parser.state() != RequestParser::State::complete && parser.state() != RequestParser::State::error) {
    const std::size_t size = trickle ? 1 : text.size() - at;
    at += parser.feed(text.data() + at, size);
  }
  return parser.state();
}

TEST(RequestParser, ARequestWithABodyWholeOrAByteAtATime) {
  const std::string text = "PUT /hello/ann?x=1 HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n"
                           "{\"dateOfBirth\":\"1990-05-17\"}";
  for (const bool trickle : {false, true}) {
    RequestParser parser(limits());
    ASSERT_EQ(feed_all(parser, text, trickle), RequestParser::State::complete) << parser.error_message();
    const HttpRequest request = parser.take();
    EXPECT_EQ(request.method, "PUT");
    EXPECT_EQ(request.target, "/hello/ann?x=1");
    EXPECT_EQ(request.path, "/hello/ann");
    EXPECT_EQ(request.body, "{\"dateOfBirth\":\"1990-05-17\"}");
    ASSERT_NE(request.header("content-type"), nullptr);
    EXPECT_EQ(*request.header("content-type"), "application/json");
    EXPECT_TRUE(request.keep_alive);
  }
}

TEST(RequestParser, PipelinedRequestsComeOneAtATime) {
  const std::string text = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  RequestParser parser(limits());
  const std::size_t used = parser.feed(text.data(), text.size());
  ASSERT_EQ(parser.state(), RequestParser::State::complete);
  EXPECT_EQ(parser.take().path, "/a");
  ASSERT_LT(used, text.size());
  parser.next();
  parser.feed(text.data() + used, text.size() - used);
  ASSERT_EQ(parser.state(), RequestParser::State::complete);
  const HttpRequest second = parser.take();
  EXPECT_EQ(second.path, "/b");
  EXPECT_FALSE(second.keep_alive);  // Connection: close is honoured
}

TEST(RequestParser, ChunkedBodiesAndHttp10) {
  RequestParser chunked(limits());
  ASSERT_EQ(feed_all(chunked, "POST /w HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"),
            RequestParser::State::complete);
  EXPECT_EQ(chunked.take().body, "abcdefg");
  RequestParser old(limits());
  ASSERT_EQ(feed_all(old, "GET / HTTP/1.0\r\n\r\n"), RequestParser::State::complete);  // no Host needed
  EXPECT_FALSE(old.take().keep_alive);  // 1.0 closes unless asked to keep alive
}

struct Refused {
  std::string text;
  int status;
  std::string says;
};

TEST(RequestParser, MalformedAndConflictingRequestsAreRefusedWithTheirStatus) {
  for (const Refused& bad : std::vector<Refused>{
           {"GET / HTTP/1.1\r\n\r\n", 400, "Host"},
           {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Host"},
           {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length"},
           {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400, "Content-Length"},
           {"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, ""},
           {"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "Transfer-Encoding"},
           {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "HTTP/2.0"},
           {"GET nothing HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
           {"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 501, "method"},
           {"PUT / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\n", 417, "Expect"},
       }) {
    RequestParser parser(limits());
    EXPECT_EQ(feed_all(parser, bad.text), RequestParser::State::error) << bad.text;
    EXPECT_EQ(parser.error_status(), bad.status) << bad.text << ": " << parser.error_message();
    EXPECT_NE(parser.error_message().find(bad.says), std::string::npos) << parser.error_message();
  }
}

TEST(RequestParser, LimitsOnTheHeadAndTheBody) {
  RequestParser head(limits(200));
  EXPECT_EQ(feed_all(head, "GET / HTTP/1.1\r\nHost: a\r\nX-Long: " + std::string(300, 'x') + "\r\n\r\n"), RequestParser::State::error);
  EXPECT_EQ(head.error_status(), 431);
  // A declared body over the limit: complete at once, unread, and the connection is to close.
  RequestParser declared(limits(16384, 10));
  ASSERT_EQ(feed_all(declared, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"), RequestParser::State::complete);
  const HttpRequest large = declared.take();
  EXPECT_TRUE(large.too_large);
  EXPECT_EQ(large.body_bytes, 100u);
  EXPECT_FALSE(large.keep_alive);
  // A chunked one that outgrows it.
  RequestParser chunked(limits(16384, 10));
  ASSERT_EQ(feed_all(chunked, "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n"),
            RequestParser::State::complete);
  EXPECT_TRUE(chunked.take().too_large);
}

TEST(RequestParser, ExpectContinueIsAskedForOnceBeforeTheBody) {
  RequestParser parser(limits());
  const std::string head = "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
  parser.feed(head.data(), head.size());
  ASSERT_EQ(parser.state(), RequestParser::State::body);
  EXPECT_TRUE(parser.wants_continue());
  parser.continue_sent();
  EXPECT_FALSE(parser.wants_continue());
  parser.feed("ok", 2);
  ASSERT_EQ(parser.state(), RequestParser::State::complete);
  EXPECT_EQ(parser.take().body, "ok");
}

TEST(RequestParser, AStreamThatEndsInsideARequestIsAnError) {
  RequestParser parser(limits());
  const std::string part = "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc";
  parser.feed(part.data(), part.size());
  parser.end_of_stream();
  EXPECT_EQ(parser.state(), RequestParser::State::error);
  EXPECT_EQ(parser.error_status(), 400);
  RequestParser between(limits());
  between.end_of_stream();  // nothing under way: no error
  EXPECT_EQ(between.state(), RequestParser::State::idle);
}

TEST(Responses, HeadKeepsTheLengthAndDropsTheBody) {
  HttpResponse response = error_response(404, "no route", "no_route");
  const std::string get = serialize(response, false, true);
  const std::string head = serialize(response, true, true);
  EXPECT_EQ(get.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << get;
  EXPECT_NE(get.find("Content-Length: " + std::to_string(response.body.size()) + "\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Length: " + std::to_string(response.body.size()) + "\r\n"), std::string::npos);
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");
  EXPECT_EQ(get.find("Connection: close"), std::string::npos);
  EXPECT_NE(serialize(response, false, false).find("Connection: close\r\n"), std::string::npos);
  HttpResponse none;
  none.status = 204;
  const std::string empty = serialize(none, false, true);
  EXPECT_EQ(empty.find("Content-Length"), std::string::npos) << empty;  // 204 has neither a body nor its length
}

}  // namespace
}  // namespace etl::plugins::http_server
