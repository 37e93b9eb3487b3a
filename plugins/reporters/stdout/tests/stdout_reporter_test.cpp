#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>

#include "plugin_harness.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

using sdk::testing::run_info;

using nlohmann::json;

/// Runs `body` with the process's stdout sent to a file; returns what was written.
template <class F>
std::string capture_stdout(F&& body) {
  TempDir dir;
  std::fflush(stdout);
  const int saved = dup(STDOUT_FILENO);
  FILE* file = std::fopen(dir.file("out").c_str(), "w");
  dup2(fileno(file), STDOUT_FILENO);
  body();
  std::fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  std::fclose(file);
  return read_file(dir.file("out"));
}

TEST(StdoutReporterConfig, GoodAndBad) {
  const auto plugin = bundled_plugin("stdout");
  EXPECT_TRUE(check_config(plugin, json::object()).problems.empty());
  const auto bad = check_config(plugin, {{"summary", "yes please"}});
  ASSERT_EQ(bad.problems.size(), 1u);
  EXPECT_EQ(bad.problems[0].pointer, "/summary");
}

TEST(StdoutReporter, OneLinePerRecordThenTheSummary) {
  const auto text = capture_stdout([] {
    auto reporter = create_plugin<sdk::Reporter>(bundled_plugin("stdout"), json::object());
    reporter.object->open(run_info({"token"}));
    sdk::Record a;
    a.set("token", "abc");
    sdk::Record b;
    b.set("token", "a-b");
    reporter.object->record(a, sdk::Outcome::ok());
    reporter.object->record(b, sdk::Outcome::rejected("23514", "violates check"));
    sdk::Summary summary;
    summary.requested = 50;
    summary.received = 49;
    summary.ok = 1;
    summary.rejected = 1;
    reporter.object->finish(summary);
  });
  const auto lines = lines_of(text);
  ASSERT_GE(lines.size(), 4u) << text;
  EXPECT_EQ(lines[0], "OK  abc");
  EXPECT_EQ(lines[1], "ERR a-b  rejected 23514: violates check");
  EXPECT_NE(lines[2].find("requested 50, received 49, ok 1, rejected 1, failed 0"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("49 of 50"), std::string::npos) << lines[3];
}

TEST(StdoutReporter, SeveralFieldsAreNamed) {
  const auto text = capture_stdout([] {
    auto reporter = create_plugin<sdk::Reporter>(bundled_plugin("stdout"), {{"summary", false}});
    reporter.object->open(run_info({"id", "name"}));
    sdk::Record r;
    r.set("id", "7");
    r.set("name", nullptr);
    reporter.object->record(r, sdk::Outcome::failed("boom"));
    reporter.object->finish(sdk::Summary{});
  });
  EXPECT_EQ(text, "ERR id=7 name=NULL  failed: boom\n");
}

}  // namespace
}  // namespace etl::testing
