// Routes and answers of the http-server source, without a server.

#include <gtest/gtest.h>

#include "routes.hpp"

namespace etl::plugins::http_server {
namespace {

TEST(Routes, PatternsMatchSegmentsAndDecodeParameters) {
  const Route hello = Route::parse("greet", "GET", "/hello/{username}", 200);
  const auto ann = hello.match("/hello/ann");
  ASSERT_TRUE(ann);
  EXPECT_EQ(*ann, (std::vector<std::pair<std::string, std::string>>{{"username", "ann"}}));
  EXPECT_EQ(hello.match("/hello/J%C3%BCrgen")->at(0).second, "J\xC3\xBCrgen");
  EXPECT_FALSE(hello.match("/hello"));
  EXPECT_FALSE(hello.match("/hello/"));  // an empty parameter is no match
  EXPECT_FALSE(hello.match("/hello/ann/more"));
  EXPECT_FALSE(hello.match("/bye/ann"));
  EXPECT_FALSE(hello.match("/hello/%zz"));
  EXPECT_FALSE(hello.match("/hello/%4"));
  const Route webhook = Route::parse("webhook", "POST", "/webhook", 200);
  EXPECT_TRUE(webhook.match("/webhook"));
  EXPECT_FALSE(webhook.match("/webhooks"));
  EXPECT_TRUE(Route::parse("root", "GET", "/", 200).match("/"));
  EXPECT_THROW(Route::parse("x", "GET", "hello", 200), std::invalid_argument);
  EXPECT_THROW(Route::parse("x", "GET", "/a/{}", 200), std::invalid_argument);
  EXPECT_THROW(Route::parse("x", "GET", "/a/{b", 200), std::invalid_argument);
}

TEST(Answers, OutcomesBecomeStatusesAndBodies) {
  sdk::Outcome found = sdk::Outcome::ok();
  found.detail.push_back(sdk::Field{"message", sdk::Value("Hello, ann! Happy birthday!")});
  EXPECT_EQ(answer_for(found, 200).status, 200);
  EXPECT_EQ(answer_for(found, 200).body, R"({"message":"Hello, ann! Happy birthday!"})");
  EXPECT_EQ(answer_for(found, 204).body, "");
  EXPECT_EQ(answer_for(sdk::Outcome::ok(), 201).status, 201);
  EXPECT_EQ(answer_for(sdk::Outcome::rejected("not_found", "the statement found no row"), 200).status, 404);
  EXPECT_EQ(answer_for(sdk::Outcome::rejected("23505", "duplicate key"), 200).status, 409);
  const Answer invalid = answer_for(sdk::Outcome::rejected("validate.regex", "username: must match ^[A-Za-z]+$"), 204);
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(invalid.body, R"({"code":"validate.regex","error":"username: must match ^[A-Za-z]+$"})");
  EXPECT_EQ(answer_for(sdk::Outcome::failed("database unreachable"), 200).status, 503);
}

}  // namespace
}  // namespace etl::plugins::http_server
