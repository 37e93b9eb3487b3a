#include <gtest/gtest.h>

#include "etl/sdk/testing.hpp"
#include "plugin_harness.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

std::string report(const json& config, std::size_t count) {
  // The SDK's own harness, as an out-of-tree plugin's tests would use it.
  sdk::testing::LoadedPlugin plugin(bundled_plugin("json").file);
  auto reporter = plugin.create_reporter(config);
  reporter->open(sdk::testing::run_info({"token"}, "pipelines/tokens.json"));
  for (std::size_t i = 0; i < count; ++i) {
    sdk::Record record;
    record.set("token", i % 2 == 0 ? "tok" + std::to_string(i) : std::string("bad\xff"));
    record.sequence = i + 1;
    reporter->record(record, i % 2 == 0 ? sdk::Outcome::ok() : sdk::Outcome::rejected("23514", "check \"c\""));
  }
  sdk::Summary summary;
  summary.requested = count + 1;
  summary.received = count;
  summary.ok = (count + 1) / 2;
  summary.rejected = count / 2;
  reporter->finish(summary);
  return read_file(config.at("path").get<std::string>());
}

TEST(JsonReporterConfig, GoodAndBad) {
  const auto plugin = bundled_plugin("json");
  const auto good = check_config(plugin, {{"path", "x.json"}});
  EXPECT_TRUE(good.problems.empty());
  EXPECT_EQ(good.config.at("format"), "document");
  const auto bad = check_config(plugin, {{"path", "x.json"}, {"format", "xml"}});
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_EQ(bad.problems[0].pointer, "/format");
}

TEST(JsonReporter, DocumentIsValidJsonWithEveryRecordAndTheSummary) {
  TempDir dir;
  const json document = json::parse(report({{"path", dir.file("r.json")}}, 5));
  EXPECT_EQ(document.at("pipeline"), "pipelines/tokens.json");
  ASSERT_EQ(document.at("records").size(), 5u);
  EXPECT_EQ(document.at("records")[0].at("record").at("token"), "tok0");
  EXPECT_EQ(document.at("records")[0].at("status"), "ok");
  EXPECT_TRUE(document.at("records")[0].at("code").is_null());
  EXPECT_EQ(document.at("records")[0].at("stage"), "sink");
  EXPECT_EQ(document.at("records")[1].at("status"), "rejected");
  EXPECT_EQ(document.at("records")[1].at("code"), "23514");
  EXPECT_EQ(document.at("records")[1].at("error"), "check \"c\"");
  EXPECT_EQ(document.at("summary").at("requested"), 6);
  EXPECT_EQ(document.at("summary").at("received"), 5);
}

TEST(JsonReporter, EmptyRunIsStillValid) {
  TempDir dir;
  const json document = json::parse(report({{"path", dir.file("r.json")}}, 0));
  EXPECT_TRUE(document.at("records").empty());
}

TEST(JsonReporter, LinesFormatHasOneObjectPerLineAndTheSummaryLast) {
  TempDir dir;
  const auto lines = lines_of(report({{"path", dir.file("r.jsonl")}, {"format", "lines"}}, 3));
  ASSERT_EQ(lines.size(), 4u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(json::parse(lines[i]).contains("status"));
  EXPECT_EQ(json::parse(lines[3]).at("summary").at("received"), 3);
  EXPECT_EQ(json::parse(lines[3]).at("layout"), 2);
}

TEST(JsonReporter, FieldsNamedLikeTheOutcomesPartsKeepTheirValues) {
  // A record {"status": "active", "code": 7, ...} beside its outcome: neither hides the other.
  TempDir dir;
  sdk::testing::LoadedPlugin plugin(bundled_plugin("json").file);
  auto reporter = plugin.create_reporter({{"path", dir.file("r.json")}});
  reporter->open(sdk::testing::run_info({"status", "code", "error", "origin", "stage", "detail", "record"}, "p.json"));
  sdk::Record record;
  record.sequence = 1;
  record.origin = "line 1";
  for (const char* name : {"status", "code", "error", "origin", "stage", "detail", "record"}) {
    record.set(name, std::string("mine: ") + name);
  }
  reporter->record(record, sdk::Outcome::rejected("bad_thing", "it was bad"));
  reporter->finish(sdk::Summary{});
  const json document = json::parse(read_file(dir.file("r.json")));
  EXPECT_EQ(document.at("layout"), 2);
  const json& item = document.at("records").at(0);
  EXPECT_EQ(item.at("status"), "rejected");
  EXPECT_EQ(item.at("code"), "bad_thing");
  EXPECT_EQ(item.at("error"), "it was bad");
  EXPECT_EQ(item.at("origin"), "line 1");
  for (const char* name : {"status", "code", "error", "origin", "stage", "detail", "record"}) {
    EXPECT_EQ(item.at("record").at(name), std::string("mine: ") + name) << item.dump();
  }
}

}  // namespace
}  // namespace etl::testing
