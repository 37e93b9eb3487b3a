#pragma once
// A GoogleTest fixture for end-to-end runs of pipelines/tokens.json: one throwaway PostgreSQL
// server and one token-source emulator per test suite, an emptied table and a fresh report
// folder per test.

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "test_support.hpp"

namespace etl::testing {

class TokensJobTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = std::make_unique<PostgresServer>();
    source_ = std::make_unique<TokenSource>(false);
  }
  static void TearDownTestSuite() {
    source_.reset();
    database_.reset();
  }
  void SetUp() override { database_->truncate_tokens(); }

  /// The environment of an etl-host run against this suite's database and emulator, in the
  /// checkout (so pipelines/tokens.json resolves), with reports in this test's folder.
  ProcessOptions environment(const std::string& query = "", int count = 10) const {
    ProcessOptions options;
    options.set_env = database_->env();
    options.set_env["TOKEN_HOST"] = source_->url(query);
    options.set_env["TOKEN_COUNT"] = std::to_string(count);
    options.set_env["REPORT_DIR"] = reports_.file("reports");
    options.unset_env = {"ETL_PLUGIN_PATH", "TOKEN_CA_FILE", "ETL_PUSHGATEWAY_URL"};
    options.working_dir = source_dir();
    return options;
  }

  /// Tokens on `OK` lines of stdout, sorted.
  static std::vector<std::string> ok_tokens(const std::string& out) {
    std::vector<std::string> tokens;
    for (const auto& line : lines_of(out)) {
      if (line.starts_with("OK  ")) tokens.push_back(line.substr(4, 22));
    }
    std::sort(tokens.begin(), tokens.end());
    return tokens;
  }

  /// The table's tokens, sorted.
  static std::vector<std::string> table() {
    auto tokens = database_->tokens_in_table();
    std::sort(tokens.begin(), tokens.end());
    return tokens;
  }

  static inline std::unique_ptr<PostgresServer> database_;
  static inline std::unique_ptr<TokenSource> source_;
  TempDir reports_;
};

}  // namespace etl::testing
