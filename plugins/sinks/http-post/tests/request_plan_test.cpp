// http-post's pure parts: templates, status verdicts, Retry-After, the outage clock.

#include <gtest/gtest.h>

#include "request_plan.hpp"

namespace etl::plugins::http_post {
namespace {

TEST(FieldTemplate, FieldsIdentityAndPercentEncoding) {
  sdk::Record record;
  record.sequence = 17;
  record.origin = "customers.csv:18";
  record.set("id", sdk::Value(std::int64_t{42}));
  record.set("name", "Doe/Jane & co");
  std::string missing;
  EXPECT_EQ(FieldTemplate("http://api/users/{name}?v={id}", true).expand(record, missing),
            "http://api/users/Doe%2FJane%20%26%20co?v=42");
  EXPECT_EQ(FieldTemplate("{_origin}#{_sequence}").expand(record, missing), "customers.csv:18#17");
  EXPECT_EQ(FieldTemplate("{{literal}} {id}").expand(record, missing), "{literal} 42");
  EXPECT_FALSE(FieldTemplate("{email}").expand(record, missing));
  EXPECT_EQ(missing, "email");
  EXPECT_THROW(FieldTemplate("{open"), std::invalid_argument);
  EXPECT_THROW(FieldTemplate("a{}b"), std::invalid_argument);
  EXPECT_TRUE(FieldTemplate("").empty());
}

TEST(Verdicts, StatusClasses) {
  EXPECT_EQ(classify_status(200), Verdict::ok);
  EXPECT_EQ(classify_status(204), Verdict::ok);
  EXPECT_EQ(classify_status(400), Verdict::rejected);
  EXPECT_EQ(classify_status(404), Verdict::rejected);
  EXPECT_EQ(classify_status(409), Verdict::rejected);
  EXPECT_EQ(classify_status(408), Verdict::retry);
  EXPECT_EQ(classify_status(429), Verdict::retry);
  EXPECT_EQ(classify_status(500), Verdict::retry);
  EXPECT_EQ(classify_status(503), Verdict::retry);
  EXPECT_EQ(retry_after_seconds("7"), 7.0);
  EXPECT_FALSE(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"));
  EXPECT_FALSE(retry_after_seconds("-1"));
  EXPECT_FALSE(retry_after_seconds(""));
}

TEST(BodyValue, JsonTextOrCut) {
  EXPECT_EQ(body_value("{\"id\": 1}").type(), sdk::ValueType::json);
  EXPECT_EQ(body_value("plain").type(), sdk::ValueType::string);
  EXPECT_TRUE(body_value("").is_null());
  EXPECT_EQ(body_value(std::string(100, 'x'), 10).stored_text(), "xxxxxxxxxx... (100 bytes)");
}

}  // namespace
}  // namespace etl::plugins::http_post
