// Bad input, end to end: the real etl-host with real plugins, PostgreSQL and the emulator.
// Each case is either a clear error that names the input (and a distinct exit code), or a
// correct outcome for the row — never a crash, a hang (every run has a time limit) or a lost row.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "fault_support.hpp"
#include "test_support.hpp"
#include "tokens_job_fixture.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

class BadInput : public TokensJobTest {
 protected:
  ProcessResult run(const std::vector<std::string>& extra, ProcessOptions options) const {
    std::vector<std::string> argv{etl_host_binary(), "run"};
    bool has_pipeline = false;
    for (const auto& arg : extra) has_pipeline = has_pipeline || arg.ends_with(".json");
    if (!has_pipeline) argv.emplace_back("pipelines/tokens.json");
    argv.insert(argv.end(), extra.begin(), extra.end());
    options.timeout = std::chrono::seconds(240);
    auto result = run_process(argv, options);
    EXPECT_FALSE(result.timed_out) << "the run hung";
    EXPECT_LT(result.exit_code, 128) << "the run crashed: " << result.err;
    return result;
  }

  /// A pipeline file in this test's folder.
  std::string pipeline_file(const std::string& text) const {
    const std::string path = reports_.file("pipeline.json");
    write_file(path, text);
    return path;
  }

  /// tokens.json with the source or sink plugin replaced by `plugin`.
  std::string tokens_pipeline_with(const std::string& stage, const std::string& plugin) const {
    json pipeline = json::parse(read_file(source_dir() + "/pipelines/tokens.json"));
    pipeline[stage]["plugin"] = plugin;
    return pipeline_file(pipeline.dump(2));
  }

  /// Expects a clear error: the exit code, the offending input named on stderr, and nothing
  /// stored.
  void expect_error(const ProcessResult& result, int exit_code, const std::string& named) const {
    EXPECT_EQ(result.exit_code, exit_code) << result.err;
    EXPECT_NE(result.err.find(named), std::string::npos) << "stderr does not name '" << named << "':\n" << result.err;
    EXPECT_EQ(table().size(), 0u);
  }

  /// Expects a completed run whose reports agree with the table.
  PromiseCheck expect_kept(const ProcessResult& result, int exit_code = 0) const {
    EXPECT_EQ(result.exit_code, exit_code) << result.err;
    auto check = check_promise(reports_.file("reports/tokens.json"), reports_.file("reports/tokens.csv"),
                               database_->tokens_in_table());
    EXPECT_TRUE(check.kept()) << check;
    return check;
  }

  static json records_of(const std::string& path) { return json::parse(read_file(path)).at("records"); }
};

// --- the pipeline file and its values -------------------------------------------------------

TEST_F(BadInput, MalformedJson) {
  const auto path = pipeline_file(R"({"source": {"plugin": "http-newline", "config": {"url": )");
  expect_error(run({path}, environment()), 3, "pipeline.json");
}

TEST_F(BadInput, MissingPipelineFile) {
  expect_error(run({reports_.file("nowhere.json")}, environment()), 3, "nowhere.json");
}

TEST_F(BadInput, WrongTypeNamesTheJsonPath) {
  expect_error(run({"--set", "sink.config.connections=\"many\""}, environment()), 3, "/sink/config/connections");
}

TEST_F(BadInput, UnknownConfigKeyNamesTheJsonPath) {
  expect_error(run({"--set", "sink.config.conections=4"}, environment()), 3, "conections");
}

TEST_F(BadInput, UnsetVariableIsNamed) {
  auto options = environment();
  options.unset_env.push_back("DB_HOST");
  options.set_env.erase("DB_HOST");
  expect_error(run({}, options), 3, "DB_HOST");
}

TEST_F(BadInput, SizeZero) { expect_error(run({}, environment("", 0)), 3, "/source/config/size"); }

TEST_F(BadInput, SizeNegative) { expect_error(run({}, environment("", -1)), 3, "/source/config/size"); }

TEST_F(BadInput, SizeNotANumber) {
  auto options = environment();
  options.set_env["TOKEN_COUNT"] = "abc";
  expect_error(run({}, options), 3, "/source/config/size");
}

TEST_F(BadInput, SizeFarBeyondAnInteger) {
  // Out of range for a 64-bit integer: a clear error, not a conversion with undefined result.
  const auto result = run({"--set", "source.config.size=1e30"}, environment());
  expect_error(result, 3, "/source/config/size: expected integer, got number 1e+30");
}

TEST_F(BadInput, PipelineNestedSeventyThousandDeep) {
  std::string text = R"({"source": {"plugin": "http-newline", "config": {"url": )";
  text += std::string(70000, '[') + std::string(70000, ']') + "}}}";
  const auto path = pipeline_file(text);
  const auto result = run_process({etl_host_binary(), "validate", path}, environment());
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_NE(result.err.find("nested more than 64 levels deep"), std::string::npos) << result.err;
}

TEST_F(BadInput, ErrorBudgetOfFourHundredNinesPercentIsRefusedByValidate) {
  const auto result = run_process({etl_host_binary(), "validate", "pipelines/tokens.json", "--set",
                                   "settings.max_rejected=" + std::string(400, '9') + "%"},
                                  environment());
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_NE(result.err.find("/settings/max_rejected: expected a count of records"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("internal error"), std::string::npos) << result.err;
}

TEST_F(BadInput, ValidateOfAnEndlessFileStopsAtTheSizeLimit) {
  const auto started = std::chrono::steady_clock::now();
  const auto result = run_process({etl_host_binary(), "validate", "/dev/zero"}, environment());
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_NE(result.err.find("/dev/zero: larger than 4 MiB"), std::string::npos) << result.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(BadInput, ValidateJsonSaysInvalidOnStdout) {
  const auto result = run_process({etl_host_binary(), "validate", "pipelines/tokens.json", "--json", "--set",
                                   "source.config.sise=5"},
                                  environment());
  EXPECT_EQ(result.exit_code, 3) << result.err;
  const json verdict = json::parse(result.out);
  EXPECT_EQ(verdict.at("valid"), false);
  EXPECT_EQ(verdict.at("exit_code"), 3);
  ASSERT_EQ(verdict.at("problems").size(), 1u) << verdict;
  EXPECT_NE(verdict.at("problems")[0].get<std::string>().find("/source/config/sise"), std::string::npos) << verdict;
  const auto valid = run_process({etl_host_binary(), "validate", "pipelines/tokens.json", "--json"}, environment());
  EXPECT_EQ(json::parse(valid.out).at("valid"), true) << valid.out;
}

TEST_F(BadInput, ATypoInAKeyGetsADidYouMean) {
  const auto result = run({"--set", "source.config.sise=5"}, environment());
  expect_error(result, 3, "unknown key \"sise\" (did you mean \"size\"?)");
}

TEST_F(BadInput, APluginsOwnObjectionComesWithTheSchemaErrors) {
  // The source's config breaks its schema; the sink's passes its schema but the sink itself
  // refuses it (no column mapped). Both are listed in one pass.
  const auto result = run({"--set", "source.config.sise=5", "--set", "sink.config.columns={}"}, environment());
  expect_error(result, 3, "/source/config/sise");
  EXPECT_NE(result.err.find("/sink/config/columns: map at least one record field to a column"), std::string::npos)
      << result.err;
}

TEST_F(BadInput, CronExpressionThatNeverMatches) {
  const auto result = run_process({etl_host_binary(), "schedule", "pipelines/tokens.json", "--cron", "0 0 30 2 *"},
                                  environment());
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("never matches"), std::string::npos) << result.err;
}

TEST_F(BadInput, OverflowingEveryIsNamedAsTheDuration) {
  const auto result = run_process({etl_host_binary(), "schedule", "pipelines/tokens.json", "--every",
                                   "99999999999999999999h"},
                                  environment());
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_NE(result.err.find("duration '99999999999999999999h' is longer than 100 years"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("--max-runs"), std::string::npos) << result.err;
}

// --- plugins ----------------------------------------------------------------------------------

TEST_F(BadInput, AReadmeGivenAsAPlugin) {
  const auto path = source_dir() + "/plugins/sinks/postgres-row-by-row/README.md";
  const auto result = run({tokens_pipeline_with("sink", path)}, environment());
  expect_error(result, 4, "README.md: not a plugin: the file is not a shared library");
  EXPECT_EQ(result.err.find("iostream error"), std::string::npos) << result.err;
}

TEST_F(BadInput, UnknownPluginIsNamed) {
  expect_error(run({tokens_pipeline_with("source", "http-newlin")}, environment()), 4, "http-newlin");
}

TEST_F(BadInput, SharedLibraryThatIsNotAPlugin) {
  const auto path = binary_dir() + "/test-plugins/bad/etl-test-not-a-plugin.so";
  expect_error(run({tokens_pipeline_with("sink", path)}, environment()), 4, "etl-test-not-a-plugin.so");
}

TEST_F(BadInput, PluginBuiltForAnotherAbi) {
  const auto path = binary_dir() + "/test-plugins/bad/etl-test-abi-mismatch.so";
  const auto result = run({tokens_pipeline_with("sink", path)}, environment());
  expect_error(result, 4, "ABI");
  EXPECT_NE(result.err.find("etl-test-abi-mismatch.so"), std::string::npos) << result.err;
}

// --- the database -----------------------------------------------------------------------------

TEST_F(BadInput, TableNameWithQuotesAndSemicolonIsAnIdentifierNotSql) {
  const auto result = run({"--set", R"(sink.config.table=x"; DROP TABLE secret_tokens; --)"}, environment());
  expect_error(result, 6, "does not exist");
  EXPECT_EQ(database_->query("SELECT to_regclass('secret_tokens') IS NOT NULL").at(0).at(0), "t");
}

TEST_F(BadInput, PasswordWithQuotesSpacesAndEquals) {
  const std::string password = R"(p'a "s= s\w)";
  database_->query("DROP ROLE IF EXISTS odd_user; CREATE ROLE odd_user LOGIN PASSWORD 'p''a \"s= s\\w';"
                   "GRANT INSERT, SELECT ON secret_tokens TO odd_user; GRANT USAGE ON SEQUENCE secret_tokens_id_seq TO odd_user;");
  auto options = environment("", 20);
  options.set_env["DB_USER"] = "odd_user";
  options.set_env["DB_PASS"] = password;
  const auto result = run({}, options);
  const auto check = expect_kept(result);
  EXPECT_EQ(check.received, 20u);
  EXPECT_EQ(result.err.find(password), std::string::npos) << "the password leaked";
}

TEST_F(BadInput, WrongPasswordFailsAtOnceWithoutLeakingIt) {
  auto options = environment();
  options.set_env["DB_PASS"] = "not-the-password-42";
  const auto started = std::chrono::steady_clock::now();
  const auto result = run({}, options);
  expect_error(result, 6, "password authentication failed");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5)) << "an authentication failure is not retried";
  EXPECT_EQ(result.err.find("not-the-password-42"), std::string::npos) << result.err;
}

// --- the provider's answers -------------------------------------------------------------------

TEST_F(BadInput, HttpRedirect) { expect_error(run({}, environment("mode=redirect")), 5, "302"); }

TEST_F(BadInput, HtmlBodyWithStatus200) { expect_error(run({}, environment("mode=html")), 5, "text/html"); }

TEST_F(BadInput, EmptyBody) {
  // The provider may answer fewer than asked; none at all is reported as such, not as an error.
  const auto result = run({}, environment("mode=empty", 10));
  const auto check = expect_kept(result, 0);
  EXPECT_EQ(check.received, 0u);
  EXPECT_NE(result.err.find("asked for 10 records and received 0;"), std::string::npos) << result.err;
  EXPECT_NE(result.out.find("# note: 0 of 10 requested records came from the source"), std::string::npos) << result.out;
}

TEST_F(BadInput, TokenLineWithNulByteIsRejectedAlone) {
  const auto result = run({}, environment("inject=nul&dash=never", 5));
  const auto check = expect_kept(result);
  EXPECT_EQ(check.ok, 4u);
  EXPECT_EQ(check.rejected, 1u);
  EXPECT_NE(read_file(reports_.file("reports/tokens.csv")).find("22021"), std::string::npos);
}

TEST_F(BadInput, TokenLineWithInvalidUtf8IsRejectedAlone) {
  const auto result = run({}, environment("inject=invalid-utf8&dash=never", 5));
  const auto check = expect_kept(result);
  EXPECT_EQ(check.ok, 4u);
  EXPECT_EQ(check.rejected, 1u);
  EXPECT_NO_THROW(json::parse(read_file(reports_.file("reports/tokens.json"))));  // still valid JSON
}

TEST_F(BadInput, OneMebibyteTokenLineIsStoredIntact) {
  const auto result = run({}, environment("inject=huge-line&dash=never", 5));
  const auto check = expect_kept(result);
  EXPECT_EQ(check.ok, 5u);
  EXPECT_EQ(database_->query("SELECT max(length(data)) FROM secret_tokens").at(0).at(0), "1048576");
}

TEST_F(BadInput, LineLongerThanTheLimitEndsTheSourceClearly) {
  const auto result = run({"--set", "source.config.max_line_bytes=1000"}, environment("inject=huge-line&dash=never", 5));
  EXPECT_EQ(result.exit_code, 5) << result.err;
  EXPECT_NE(result.err.find("longer than 1000 bytes (max_line_bytes)"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("POST " + source_->url()), std::string::npos) << "the error names the URL:\n" << result.err;
  const auto check = expect_kept(result, 5);
  EXPECT_EQ(check.received, 1u);  // the line before the long one
}

TEST_F(BadInput, CrLfLineEndingsAreTolerated) {
  const auto result = run({}, environment("inject=crlf&dash=never", 5));
  const auto check = expect_kept(result);
  EXPECT_EQ(check.ok, 5u);
  for (const auto& token : table()) EXPECT_EQ(token.find('\r'), std::string::npos);
}

// --- sizes above the provider's cap of 455,902 per request --------------------------------------

class BadInputLargeSizes : public BadInput {
 protected:
  /// http-newline into test-sink (which accepts every record without storing it), so the
  /// size, not the database, is what is tested. The emulator answers 400 to any request above
  /// 455,902, as the provider does: success means the size was split.
  void expect_split(std::uint64_t size) const {
    json pipeline = json::parse(read_file(source_dir() + "/pipelines/tokens.json"));
    pipeline["sink"] = {{"plugin", "test-sink"}, {"config", {{"mode", "ok"}}}};
    pipeline["reporters"] = json::array({{{"plugin", "json"},
                                          {"config", {{"path", reports_.file("summary.json")}, {"statuses", {"failed"}}}}}});
    const auto path = pipeline_file(pipeline.dump(2));
    auto options = environment("dash=never", static_cast<int>(size));
    const auto result =
        run({path, "--plugin-path", binary_dir() + "/test-plugins/good", "--set", "settings.progress_interval=0"}, options);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto summary = json::parse(read_file(reports_.file("summary.json"))).at("summary");
    EXPECT_EQ(summary.at("requested"), size);
    EXPECT_EQ(summary.at("received"), size);
    EXPECT_EQ(summary.at("ok"), size);
  }
};

TEST_F(BadInputLargeSizes, Size455903IsSplitIntoTwoRequests) { expect_split(455903); }

TEST_F(BadInputLargeSizes, Size2000000IsSplitIntoFiveRequests) { expect_split(2000000); }

}  // namespace
}  // namespace etl::testing
