// Tests the built plugin library in-process with the SDK's harness.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <etl/sdk/testing.hpp>

namespace {

using etl::sdk::testing::LoadedPlugin;
using nlohmann::json;

std::string temp_path(const std::string& name) { return ::testing::TempDir() + name; }

std::vector<json> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

TEST(JsonlFileSink, DescriptorAndDefaults) {
  LoadedPlugin plugin(PLUGIN_FILE);
  EXPECT_STREQ(plugin.descriptor().name, "jsonl-file");
  EXPECT_EQ(plugin.descriptor().kind, etl::sdk::PluginKind::sink);
  const json config = plugin.complete({{"path", "x.jsonl"}});
  EXPECT_EQ(config.at("append"), false);
  EXPECT_THROW(plugin.complete(json::object()), std::invalid_argument);
}

TEST(JsonlFileSink, WritesEveryRecordAndReportsEachOnce) {
  LoadedPlugin plugin(PLUGIN_FILE);
  const std::string path = temp_path("records.jsonl");
  auto sink = plugin.create_sink({{"path", path}});
  std::size_t deliveries = 0;
  const auto outcomes = etl::sdk::testing::write_all(*sink, etl::sdk::testing::records("token", {"a", "b", "c"}), &deliveries);
  EXPECT_EQ(deliveries, 3u);
  ASSERT_EQ(outcomes.size(), 3u);
  for (const auto& [sequence, outcome] : outcomes) EXPECT_EQ(outcome.status, etl::sdk::Status::ok) << sequence;
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2].at("token"), "c");
}

TEST(JsonlFileSink, RejectsRecordsWithoutTheRequiredField) {
  LoadedPlugin plugin(PLUGIN_FILE);
  auto sink = plugin.create_sink({{"path", temp_path("required.jsonl")}, {"require_field", "id"}});
  const auto outcomes = etl::sdk::testing::write_all(*sink, etl::sdk::testing::records("token", {"a"}));
  EXPECT_EQ(outcomes.at(1).status, etl::sdk::Status::rejected);
}

TEST(UpperCase, ChangesTheFieldsOrRefusesTheRecord) {
  LoadedPlugin plugin(TRANSFORM_FILE);
  EXPECT_EQ(plugin.descriptor().kind, etl::sdk::PluginKind::transform);
  auto transform = plugin.create_transform({{"fields", {"word"}}});
  auto kept = etl::sdk::testing::transform_one(*transform, etl::sdk::testing::records("word", {"hello"}).front());
  EXPECT_EQ(kept.result.verdict, etl::sdk::TransformResult::Verdict::keep);
  EXPECT_EQ(*kept.record.text("word"), "HELLO");
  auto refused = etl::sdk::testing::transform_one(*transform, etl::sdk::testing::records("other", {"x"}).front());
  EXPECT_EQ(refused.result.verdict, etl::sdk::TransformResult::Verdict::refuse);
  EXPECT_EQ(refused.result.code, "upper_case.missing");
}

TEST(Sequence, TypedValuesAndRefusedInput) {
  LoadedPlugin plugin(SOURCE_FILE);
  auto source = plugin.create_source({{"start", 5}, {"count", 4}, {"refuse_every", 7}});
  const auto records = etl::sdk::testing::read_all(*source, 3);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(*records[0].get("n"), etl::sdk::Value(std::int64_t{5}));
  ASSERT_TRUE(records[2].refusal);  // 7
  EXPECT_EQ(records[2].refusal->code, "sequence.divisible");
  EXPECT_EQ(records[2].origin, "sequence:3");
  EXPECT_FALSE(records[3].refusal);
}

TEST(JsonlFileSink, BadConfigAndUnwritableFile) {
  LoadedPlugin plugin(PLUGIN_FILE);
  EXPECT_THROW(plugin.create_sink({{"path", "some/folder/"}}), etl::sdk::ConfigError);
  auto sink = plugin.create_sink({{"path", "/proc/no/such/file.jsonl"}});
  etl::sdk::testing::CollectingReceiver receiver;
  try {
    sink->open(receiver);
    FAIL() << "expected an error";
  } catch (const etl::sdk::PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/no/such/file.jsonl"), std::string::npos);
  }
}

}  // namespace
