// The main job end to end: the real etl-host runs pipelines/tokens.json against a real
// PostgreSQL server and the token-source emulator, over loopback sockets.

#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

class TokensPipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = new PostgresServer();
    http_ = new TokenSource(false, {"--seed", "42"});
    https_ = new TokenSource(true);
  }
  static void TearDownTestSuite() {
    delete http_;
    delete https_;
    delete database_;
  }
  void SetUp() override { database_->truncate_tokens(); }

  ProcessOptions environment(const std::string& token_query = "") const {
    ProcessOptions options;
    options.set_env = database_->env();
    options.set_env["TOKEN_HOST"] = http_->url(token_query);
    options.set_env["REPORT_DIR"] = reports_.file("reports");
    options.unset_env = {"TOKEN_COUNT", "ETL_PLUGIN_PATH", "TOKEN_CA_FILE"};
    options.working_dir = source_dir();
    return options;
  }

  ProcessResult etl_host(const std::vector<std::string>& arguments, const ProcessOptions& options) const {
    std::vector<std::string> argv = {etl_host_binary()};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return run_process(argv, options);
  }

  /// Checks the promise of a run: every token received is reported once per occurrence in
  /// stdout, CSV and JSON, with the right status; the table holds exactly the tokens reported ok.
  void expect_complete_and_consistent(const ProcessResult& run, std::size_t expected_tokens) const {
    std::vector<std::string> ok_tokens;
    std::vector<std::string> stdout_tokens;
    for (const auto& line : lines_of(run.out)) {
      if (line.starts_with("#")) continue;
      ASSERT_TRUE(line.starts_with("OK  ") || line.starts_with("ERR ")) << line;
      const std::string token = line.substr(4, 22);
      stdout_tokens.push_back(token);
      const bool has_dash = token.find('-') != std::string::npos;
      if (line.starts_with("OK  ")) {
        EXPECT_FALSE(has_dash) << line;
        ok_tokens.push_back(token);
      } else {
        EXPECT_TRUE(has_dash) << line;
        EXPECT_NE(line.find("rejected 23514"), std::string::npos) << line;
      }
    }
    EXPECT_EQ(stdout_tokens.size(), expected_tokens);

    const auto csv = lines_of(read_file(reports_.file("reports/tokens.csv")));
    ASSERT_EQ(csv.size(), expected_tokens + 1);
    EXPECT_EQ(csv[0], "token,status,stage,code,error,origin,detail,extra");
    std::vector<std::string> csv_tokens;
    for (std::size_t i = 1; i < csv.size(); ++i) {
      csv_tokens.push_back(csv[i].substr(0, 22));
      const bool ok = csv[i].substr(22, 4) == ",ok,";
      EXPECT_EQ(ok, csv[i].find('-') == std::string::npos || csv[i].find('-') > 21) << csv[i];
    }

    const json report = json::parse(read_file(reports_.file("reports/tokens.json")));
    std::vector<std::string> json_tokens;
    std::size_t json_ok = 0;
    for (const auto& record : report.at("records")) {
      json_tokens.push_back(record.at("record").at("token"));
      json_ok += record.at("status") == "ok";
    }
    EXPECT_EQ(report.at("summary").at("received"), expected_tokens);
    EXPECT_EQ(report.at("summary").at("ok"), ok_tokens.size());
    EXPECT_EQ(json_ok, ok_tokens.size());

    std::sort(stdout_tokens.begin(), stdout_tokens.end());
    std::sort(csv_tokens.begin(), csv_tokens.end());
    std::sort(json_tokens.begin(), json_tokens.end());
    EXPECT_EQ(csv_tokens, stdout_tokens);
    EXPECT_EQ(json_tokens, stdout_tokens);

    auto in_table = database_->tokens_in_table();
    std::sort(in_table.begin(), in_table.end());
    std::sort(ok_tokens.begin(), ok_tokens.end());
    EXPECT_EQ(in_table, ok_tokens);
    EXPECT_EQ(run.err.find(database_->get("DB_PASS")), std::string::npos) << "password leaked on stderr";
    EXPECT_EQ(run.out.find(database_->get("DB_PASS")), std::string::npos) << "password leaked on stdout";
  }

  static PostgresServer* database_;
  static TokenSource* http_;
  static TokenSource* https_;
  TempDir reports_;
};
PostgresServer* TokensPipeline::database_ = nullptr;
TokenSource* TokensPipeline::http_ = nullptr;
TokenSource* TokensPipeline::https_ = nullptr;

TEST_F(TokensPipeline, FiveTokensByDefault) {
  const auto run = etl_host({"run", "pipelines/tokens.json"}, environment());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_complete_and_consistent(run, 5);
}

TEST_F(TokensPipeline, AThousandTokens) {
  auto options = environment();
  options.set_env["TOKEN_COUNT"] = "1000";
  const auto run = etl_host({"run", "pipelines/tokens.json"}, options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_complete_and_consistent(run, 1000);
  EXPECT_NE(run.out.find("# summary: requested 1000, received 1000"), std::string::npos);
  // Some tokens of a thousand contain '-' (about 29%): both outcomes really happened.
  EXPECT_GT(database_->tokens_in_table().size(), 500u);
  EXPECT_LT(database_->tokens_in_table().size(), 900u);
}

TEST_F(TokensPipeline, SizeFromTheCommandLine) {
  const auto run = etl_host({"run", "pipelines/tokens.json", "--set", "source.config.size=20"}, environment());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_complete_and_consistent(run, 20);
}

TEST_F(TokensPipeline, SerialModeGivesTheSameGuarantees) {
  auto options = environment();
  options.set_env["TOKEN_COUNT"] = "300";
  const auto run = etl_host({"run", "pipelines/tokens.json", "--set", "sink.config.pipeline=false", "--set",
                             "sink.config.connections=1"},
                            options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_complete_and_consistent(run, 300);
}

TEST_F(TokensPipeline, ProviderShortfallIsReportedAndTheRunSucceeds) {
  auto options = environment("mode=short");
  options.set_env["TOKEN_COUNT"] = "50";
  const auto run = etl_host({"run", "pipelines/tokens.json"}, options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_complete_and_consistent(run, 49);
  EXPECT_NE(run.out.find("49 of 50 requested"), std::string::npos) << run.out;
  EXPECT_NE(run.err.find("asked for 50 records and received 49"), std::string::npos) << run.err;
}

TEST_F(TokensPipeline, RepeatedTokensAreReportedPerOccurrence) {
  // The emulator sends the first 3 tokens twice: 13 lines for 10 asked. The 10 asked for are
  // taken (a provider must not make a run take more than it asked), repeats included.
  auto options = environment("duplicates=3&dash=never");
  options.set_env["TOKEN_COUNT"] = "10";
  const auto run = etl_host({"run", "pipelines/tokens.json"}, options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_complete_and_consistent(run, 10);
  EXPECT_EQ(database_->tokens_in_table().size(), 10u);
  EXPECT_EQ(database_->query("SELECT count(DISTINCT data) FROM secret_tokens").at(0).at(0), "7");
  EXPECT_NE(run.err.find("the server sent more than the 10 line(s) asked for"), std::string::npos) << run.err;
}

TEST_F(TokensPipeline, HttpsTokenSourceWithItsCertificate) {
  auto options = environment();
  options.set_env["TOKEN_HOST"] = https_->url();
  options.set_env["TOKEN_CA_FILE"] = https_->certificate();
  const auto run = etl_host({"run", "pipelines/tokens.json"}, options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_complete_and_consistent(run, 5);
}

TEST_F(TokensPipeline, VerifyFullDatabaseConnection) {
  auto options = environment();
  options.set_env["DB_HOST"] = "localhost";
  options.set_env["DB_SSLMODE"] = "verify-full";
  const auto run = etl_host({"run", "pipelines/tokens.json"}, options);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  expect_complete_and_consistent(run, 5);
}

TEST_F(TokensPipeline, UnreachableDatabaseNamesTheHost) {
  auto options = environment();
  options.set_env["DB_PORT"] = "1";
  const auto run = etl_host({"run", "pipelines/tokens.json"}, options);
  EXPECT_EQ(run.exit_code, 6);
  EXPECT_NE(run.err.find("127.0.0.1:1/tokens"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find(database_->get("DB_PASS")), std::string::npos);
}

TEST_F(TokensPipeline, UnreachableSourceNamesTheUrl) {
  auto options = environment();
  options.set_env["TOKEN_HOST"] = "http://127.0.0.1:1/tokens";
  const auto run = etl_host({"run", "pipelines/tokens.json"}, options);
  EXPECT_EQ(run.exit_code, 5);
  EXPECT_NE(run.err.find("http://127.0.0.1:1/tokens"), std::string::npos) << run.err;
  EXPECT_TRUE(database_->tokens_in_table().empty());
}

TEST_F(TokensPipeline, ValidateAcceptsTheShippedPipeline) {
  const auto run = etl_host({"validate", "pipelines/tokens.json"}, environment());
  EXPECT_EQ(run.exit_code, 0) << run.err;
}

TEST_F(TokensPipeline, ValidateNamesEachProblem) {
  struct Case {
    std::map<std::string, std::string> set_env;
    std::vector<std::string> unset_env;
    std::vector<std::string> extra;
    int exit_code;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {{{"TOKEN_COUNT", "abc"}}, {}, {}, 3, {"/source/config/size", "\"abc\"", "${TOKEN_COUNT}"}},
      {{{"TOKEN_COUNT", "0"}}, {}, {}, 3, {"/source/config/size", "at least 1"}},
      {{{"TOKEN_COUNT", "-1"}}, {}, {}, 3, {"/source/config/size", "at least 1"}},
      {{}, {"TOKEN_HOST"}, {}, 3, {"/source/config/url", "TOKEN_HOST"}},
      {{}, {"DB_HOST", "DB_USER"}, {}, 3, {"/sink/config/host: variable DB_HOST", "/sink/config/user: variable DB_USER"}},
      {{{"DB_SSLMODE", "sometimes"}}, {}, {}, 3, {"/sink/config/sslmode", "sometimes"}},
      {{}, {}, {"--set", "sink.config.tabel=x"}, 3, {"/sink/config/tabel", "allowed keys"}},
      {{}, {}, {"--set", "sink.plugin=postgre"}, 4, {"/sink/plugin", "unknown plugin 'postgre' (did you mean 'postgres'?)"}},
      {{}, {}, {"--set", "source.plugin=http-newlines"}, 4, {"/source/plugin", "(did you mean 'http-newline'?)"}},
  };
  for (const auto& c : cases) {
    auto options = environment();
    for (const auto& [k, v] : c.set_env) options.set_env[k] = v;
    for (const auto& k : c.unset_env) {
      options.set_env.erase(k);
      options.unset_env.push_back(k);
    }
    std::vector<std::string> arguments = {"validate", "pipelines/tokens.json"};
    arguments.insert(arguments.end(), c.extra.begin(), c.extra.end());
    const auto run = etl_host(arguments, options);
    EXPECT_EQ(run.exit_code, c.exit_code) << run.err;
    EXPECT_NE(run.err.find("pipelines/tokens.json"), std::string::npos) << run.err;
    for (const auto& text : c.expected) EXPECT_NE(run.err.find(text), std::string::npos) << text << "\n" << run.err;
  }
}

TEST_F(TokensPipeline, MalformedPipelineFile) {
  write_file(reports_.file("broken.json"), "{\n  \"source\": {\"plugin\": \"http-newline\",\n}");
  const auto run = etl_host({"validate", reports_.file("broken.json")}, environment());
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("broken.json:3:"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("malformed JSON"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace etl::testing
