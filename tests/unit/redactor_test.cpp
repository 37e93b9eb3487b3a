#include <gtest/gtest.h>

#include "logging.hpp"

namespace etl::host {
namespace {

TEST(Redactor, HidesRegisteredSecretsEverywhere) {
  Redactor::instance().add("pa ss'w=rd");
  EXPECT_EQ(Redactor::instance().redact("password=pa ss'w=rd; again pa ss'w=rd"), "password=***; again ***");
}

TEST(Redactor, HidesUrlCredentials) {
  EXPECT_EQ(Redactor::instance().redact("GET https://user:secret@host.example/path failed"),
            "GET https://***@host.example/path failed");
  EXPECT_EQ(Redactor::instance().redact("https://host.example/a@b"), "https://host.example/a@b");
  EXPECT_EQ(Redactor::instance().redact("http://u:p@h:80/x?y=1"), "http://***@h:80/x?y=1");
  EXPECT_EQ(Redactor::instance().redact("http://h/x"), "http://h/x");
}

TEST(Redactor, HidesCredentialsInUrlQueries) {
  EXPECT_EQ(Redactor::instance().redact("POST http://h/t?access_token=abc123&size=5 failed"),
            "POST http://h/t?access_token=***&size=5 failed");
  EXPECT_EQ(Redactor::instance().redact("https://h/?size=5&API_KEY=k&sig=xyz#frag"),
            "https://h/?size=5&API_KEY=***&sig=***#frag");
  EXPECT_EQ(Redactor::instance().redact("\"http://u:p@h/x?token=t\" and http://h/y?password="),
            "\"http://***@h/x?token=***\" and http://h/y?password=***");
  EXPECT_EQ(Redactor::instance().redact("http://h/x?size=5&mode=slow"), "http://h/x?size=5&mode=slow");
  EXPECT_EQ(Redactor::instance().redact("http://h/x?token=***"), "http://h/x?token=***");
}

TEST(Redactor, IgnoresTrivialSecrets) {
  Redactor::instance().add("a");
  EXPECT_EQ(Redactor::instance().redact("a cat"), "a cat");
}

}  // namespace
}  // namespace etl::host
