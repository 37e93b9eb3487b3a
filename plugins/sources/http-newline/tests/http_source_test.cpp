// http-newline against the real token-source emulator over loopback sockets (HTTP and HTTPS).

#include <gtest/gtest.h>

#include <regex>

#include "plugin_harness.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

struct Drained {
  std::vector<std::string> tokens;
  std::string error;
  sdk::SourceStats stats;
};

/// Reads the source to its end. Without a "retry" key in `config`, failures are not retried.
Drained drain(json config) {
  if (!config.contains("retry")) config["retry"] = {{"attempts", 1}};
  Drained result;
  auto source = create_plugin<sdk::Source>(bundled_plugin("http-newline"), config);
  sdk::Batch batch;
  try {
    source.object->open();
    bool more = true;
    while (more) {
      batch.clear();
      more = source.object->read(batch, 7);
      for (const auto& record : batch) result.tokens.emplace_back(*record.text("token"));
    }
  } catch (const std::exception& e) {
    // Records appended before the error are complete and count, as the host treats them.
    for (const auto& record : batch) result.tokens.emplace_back(*record.text("token"));
    result.error = e.what();
  }
  result.stats = source.object->stats();
  return result;
}

class HttpSource : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    http_ = new TokenSource(false);
    https_ = new TokenSource(true);
  }
  static void TearDownTestSuite() {
    delete http_;
    delete https_;
  }
  static TokenSource* http_;
  static TokenSource* https_;
};
TokenSource* HttpSource::http_ = nullptr;
TokenSource* HttpSource::https_ = nullptr;

const std::regex kToken("^[A-Za-z0-9_-]{22}$");

TEST_F(HttpSource, FetchesTheTokensAskedFor) {
  const auto result = drain({{"url", http_->url()}, {"size", 25}});
  EXPECT_EQ(result.error, "");
  ASSERT_EQ(result.tokens.size(), 25u);
  for (const auto& token : result.tokens) EXPECT_TRUE(std::regex_match(token, kToken)) << token;
  EXPECT_EQ(result.stats.requested, 25u);
  EXPECT_EQ(result.stats.received, 25u);
}

TEST_F(HttpSource, SplitsALargeSizeIntoSeveralRequests) {
  const auto result = drain({{"url", http_->url()}, {"size", 1001}, {"max_per_request", 300}});
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.tokens.size(), 1001u);
}

TEST_F(HttpSource, FewerTokensThanAskedIsNotAnError) {
  const auto result = drain({{"url", http_->url("mode=short")}, {"size", 50}});
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.tokens.size(), 49u);
  EXPECT_EQ(result.stats.requested, 50u);
  EXPECT_EQ(result.stats.received, 49u);
}

TEST_F(HttpSource, EmptyBodyGivesNoRecords) {
  const auto result = drain({{"url", http_->url("mode=empty")}, {"size", 5}});
  EXPECT_EQ(result.error, "");
  EXPECT_TRUE(result.tokens.empty());
}

TEST_F(HttpSource, ChunkedBodyCutMidLineIsAnErrorAndThePartialLineIsDropped) {
  const auto result = drain({{"url", http_->url("mode=truncate")}, {"size", 40}});
  EXPECT_NE(result.error.find("ended"), std::string::npos) << result.error;
  EXPECT_NE(result.error.find("127.0.0.1:" + std::to_string(http_->port())), std::string::npos) << result.error;
  EXPECT_EQ(result.tokens.size(), 20u);
  for (const auto& token : result.tokens) EXPECT_TRUE(std::regex_match(token, kToken)) << token;
}

TEST_F(HttpSource, ContentLengthBodyCutMidLineIsAnError) {
  const auto result = drain({{"url", http_->url("mode=truncate-length")}, {"size", 40}});
  EXPECT_NE(result.error.find("Content-Length"), std::string::npos) << result.error;
  for (const auto& token : result.tokens) EXPECT_TRUE(std::regex_match(token, kToken)) << token;
  EXPECT_LT(result.tokens.size(), 40u);
}

TEST_F(HttpSource, ErrorStatusesNameTheUrlAndStatus) {
  for (const std::string mode : {"error500", "error503", "redirect", "html"}) {
    const auto result = drain({{"url", http_->url("mode=" + mode)}, {"size", 5}});
    EXPECT_TRUE(result.tokens.empty());
    EXPECT_NE(result.error.find(http_->url("mode=" + mode)), std::string::npos) << result.error;
  }
  EXPECT_NE(drain({{"url", http_->url("mode=error500")}, {"size", 5}}).error.find("HTTP 500"), std::string::npos);
  EXPECT_NE(drain({{"url", http_->url("mode=html")}, {"size", 5}}).error.find("text/html"), std::string::npos);
}

TEST_F(HttpSource, SizeAboveTheProviderCapIsRefusedByTheProvider) {
  const auto result = drain({{"url", http_->url()}, {"size", 455903}, {"max_per_request", 455903}});
  EXPECT_NE(result.error.find("HTTP 400"), std::string::npos) << result.error;
}

TEST_F(HttpSource, CredentialsInTheUrlNeverAppearInErrors) {
  const std::string url = "http://alice:hunter2secret@127.0.0.1:" + std::to_string(http_->port()) + "/x?mode=error500";
  const auto result = drain({{"url", url}, {"size", 5}});
  EXPECT_FALSE(result.error.empty());
  EXPECT_EQ(result.error.find("hunter2secret"), std::string::npos) << result.error;
}

TEST_F(HttpSource, SlowServerIsReadAsItComes) {
  const auto result = drain({{"url", http_->url("mode=slow&delay_ms=50")}, {"size", 35}});
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.tokens.size(), 35u);
}

TEST_F(HttpSource, StalledServerTimesOut) {
  const auto result = drain({{"url", http_->url("mode=slow&delay_ms=3000")}, {"size", 35}, {"timeout", 0.5}});
  EXPECT_NE(result.error.find("timeout"), std::string::npos) << result.error;
  EXPECT_EQ(result.tokens.size(), 10u);
}

const json kQuickRetries = {{"attempts", 3}, {"initial_delay", 0.01}};

TEST_F(HttpSource, ServiceUnavailableThenSuccess) {
  const auto result = drain({{"url", http_->url("fail_first=2&key=503-then-ok&retry_after=0")}, {"size", 25}, {"retry", kQuickRetries}});
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.tokens.size(), 25u);
}

TEST_F(HttpSource, TooManyRequestsHonoursRetryAfter) {
  const auto started = std::chrono::steady_clock::now();
  const auto result = drain({{"url", http_->url("fail_first=1&fail_mode=error429&key=429-once&retry_after=1")},
                             {"size", 5}, {"retry", kQuickRetries}});
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.tokens.size(), 5u);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900));
}

TEST_F(HttpSource, RetryAfterIsCappedByMaxDelay) {
  const auto started = std::chrono::steady_clock::now();
  const auto result = drain({{"url", http_->url("fail_first=1&key=capped&retry_after=100")}, {"size", 5},
                             {"retry", {{"attempts", 2}, {"max_delay", 0.2}}}});
  EXPECT_EQ(result.error, "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(HttpSource, BodyCutMidLineIsFetchedAgainForTheShortfall) {
  const auto result = drain({{"url", http_->url("fail_first=1&fail_mode=truncate&key=cut-once")}, {"size", 40},
                             {"retry", kQuickRetries}});
  EXPECT_EQ(result.error, "");
  ASSERT_EQ(result.tokens.size(), 40u);  // 20 complete lines, then the 20 missing ones
  for (const auto& token : result.tokens) EXPECT_TRUE(std::regex_match(token, kToken)) << token;
  EXPECT_EQ(result.stats.received, 40u);
}

TEST_F(HttpSource, PersistentFailureGivesUpAfterTheAttempts) {
  const auto result = drain({{"url", http_->url("mode=error503&retry_after=0")}, {"size", 5}, {"retry", kQuickRetries}});
  EXPECT_NE(result.error.find("HTTP 503"), std::string::npos) << result.error;
  EXPECT_NE(result.error.find("gave up after 3 attempts"), std::string::npos) << result.error;
  const auto refused = drain({{"url", "http://127.0.0.1:1/x"}, {"size", 5}, {"retry", kQuickRetries}});
  EXPECT_NE(refused.error.find("gave up after 3 attempts"), std::string::npos) << refused.error;
}

TEST_F(HttpSource, ClientErrorsAreNotRetried) {
  const auto started = std::chrono::steady_clock::now();
  const auto result = drain({{"url", http_->url()}, {"size", 455903}, {"max_per_request", 455903},
                             {"retry", {{"attempts", 5}, {"initial_delay", 2}}}});
  EXPECT_NE(result.error.find("HTTP 400"), std::string::npos) << result.error;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

TEST_F(HttpSource, UnreachableServerNamesTheHost) {
  // Port 1 (tcpmux) is closed on loopback: the connection is refused at once.
  const auto result = drain({{"url", "http://127.0.0.1:1/x"}, {"size", 5}, {"timeout", 5}});
  EXPECT_NE(result.error.find("http://127.0.0.1:1/x"), std::string::npos) << result.error;
  EXPECT_TRUE(result.tokens.empty());
}

TEST_F(HttpSource, HttpsWithTheServersCertificateAsCa) {
  const auto result = drain({{"url", https_->url()}, {"size", 10}, {"tls_ca_file", https_->certificate()}});
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.tokens.size(), 10u);
}

TEST_F(HttpSource, HttpsWithAnUntrustedCertificateIsRefused) {
  const auto result = drain({{"url", https_->url()}, {"size", 10}});
  // Refused for its certificate, not for any other reason.
  EXPECT_NE(result.error.find("certificate"), std::string::npos) << result.error;
  EXPECT_TRUE(result.tokens.empty());
  // The same server with its certificate trusted answers: the refusal was the certificate's.
  const auto trusted = drain({{"url", https_->url()}, {"size", 10}, {"tls_ca_file", https_->certificate()}});
  EXPECT_EQ(trusted.error, "");
  EXPECT_EQ(trusted.tokens.size(), 10u);
}

TEST_F(HttpSource, HttpsWithVerificationOff) {
  const auto result = drain({{"url", https_->url()}, {"size", 10}, {"tls_verify", false}});
  EXPECT_EQ(result.error, "");
  EXPECT_EQ(result.tokens.size(), 10u);
}

}  // namespace
}  // namespace etl::testing
