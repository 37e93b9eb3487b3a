#include <gtest/gtest.h>

#include "csv_format.hpp"
#include "etl/sdk/testing.hpp"
#include "plugin_harness.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

using sdk::testing::run_info;

using nlohmann::json;

TEST(CsvFormat, QuotesOnlyWhenNeeded) {
  auto field = [](std::string_view value) {
    std::string line;
    plugins::csv::append_field(line, value);
    return line;
  };
  EXPECT_EQ(field("plain"), "plain");
  EXPECT_EQ(field(""), "");
  EXPECT_EQ(field("a,b"), "\"a,b\"");
  EXPECT_EQ(field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(field("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(field(" padded "), "\" padded \"");
}

TEST(CsvReporterConfig, GoodAndBad) {
  const auto plugin = bundled_plugin("csv");
  EXPECT_TRUE(check_config(plugin, {{"path", "out.csv"}}).problems.empty());
  const auto missing = check_config(plugin, json::object());
  ASSERT_EQ(missing.problems.size(), 1u);
  EXPECT_EQ(missing.problems[0].pointer, "/path");
  const auto wrong_status = check_config(plugin, {{"path", "x"}, {"statuses", {"ok", "bogus"}}});
  ASSERT_EQ(wrong_status.problems.size(), 1u);
  EXPECT_EQ(wrong_status.problems[0].pointer, "/statuses/1");
}

std::string report(const json& config, const std::vector<std::pair<std::string, sdk::Outcome>>& rows) {
  // The SDK's own harness, as an out-of-tree plugin's tests would use it.
  sdk::testing::LoadedPlugin plugin(bundled_plugin("csv").file);
  auto reporter = plugin.create_reporter(config);
  reporter->open(run_info({"token"}));
  std::uint64_t sequence = 0;
  for (const auto& [token, outcome] : rows) {
    sdk::Record record;
    record.set("token", token);
    record.sequence = ++sequence;
    reporter->record(record, outcome);
  }
  reporter->finish(sdk::Summary{});
  return read_file(config.at("path").get<std::string>());
}

TEST(CsvReporter, WritesRfc4180WithHeader) {
  TempDir dir;
  const auto text = report({{"path", dir.file("sub/dir/out.csv")}},
                           {{"abc", sdk::Outcome::ok()},
                            {"a-b", sdk::Outcome::rejected("23514", "violates check constraint \"c\"")},
                            {"x,y", sdk::Outcome::failed("connection lost")}});
  EXPECT_EQ(text,
            "token,status,stage,code,error,origin,detail,extra\r\n"
            "abc,ok,sink,,,,,\r\n"
            "a-b,rejected,sink,23514,\"violates check constraint \"\"c\"\"\",,,\r\n"
            "\"x,y\",failed,sink,,connection lost,,,\r\n");
}

TEST(CsvReporter, RejectFileKeepsChosenStatuses) {
  TempDir dir;
  const auto text = report({{"path", dir.file("rejects.csv")}, {"statuses", {"rejected", "failed"}}},
                           {{"abc", sdk::Outcome::ok()}, {"a-b", sdk::Outcome::rejected("23514", "no")}});
  EXPECT_EQ(text, "token,status,stage,code,error,origin,detail,extra\r\na-b,rejected,sink,23514,no,,,\r\n");
}

TEST(CsvReporter, FieldsNamedLikeOutcomeColumnsAndUndeclaredFieldsKeepTheirValues) {
  // A record's own "status" (headed record.status, or further record. prefixes while that is
  // another field's name) must not be lost beside the outcome's, nor a field the source did
  // not declare (a schemaless source's).
  TempDir dir;
  sdk::testing::LoadedPlugin plugin(bundled_plugin("csv").file);
  auto reporter = plugin.create_reporter({{"path", dir.file("out.csv")}});
  reporter->open(run_info({"id", "status", "record.status"}));
  sdk::Record record;
  record.sequence = 1;
  record.set("id", std::int64_t{7});
  record.set("status", "active");
  record.set("record.status", "x");
  record.set("note", "late, \"quoted\"");
  reporter->record(record, sdk::Outcome::ok());
  reporter->finish(sdk::Summary{});
  EXPECT_EQ(read_file(dir.file("out.csv")),
            "id,record.record.status,record.status,status,stage,code,error,origin,detail,extra\r\n"
            "7,active,x,ok,sink,,,,,\"{\"\"note\"\":\"\"late, \\\"\"quoted\\\"\"\"\"}\"\r\n");
}

TEST(CsvReporter, UnwritablePathIsAnErrorNamingIt) {
  auto reporter = create_plugin<sdk::Reporter>(bundled_plugin("csv"), {{"path", "/proc/nope/out.csv"}});
  try {
    reporter.object->open(run_info({"token"}));
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/nope"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace etl::testing
