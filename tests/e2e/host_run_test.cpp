// The real etl-host binary with real plugin libraries (test-counter, test-sink and the bundled
// reporters): lifecycle, exactly-once reporting, failures, exit codes, command line.

#include <gtest/gtest.h>

#include "etl/sdk/version.hpp"
#include <nlohmann/json.hpp>

#include "schema.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

std::string test_plugins(const std::string& dir) { return binary_dir() + "/test-plugins/" + dir; }

struct RunOutput {
  ProcessResult process;
  std::vector<std::string> stdout_records;  // lines that are not summary comments
  json report;
  std::vector<std::string> csv;
};

class HostRun : public ::testing::Test {
 protected:
  std::string write_pipeline(const json& source_config, const json& sink_config, json settings = json::object()) {
    json pipeline = {{"source", {{"plugin", "test-counter"}, {"config", source_config}}},
                     {"sink", {{"plugin", "test-sink"}, {"config", sink_config}}},
                     {"reporters", {{{"plugin", "stdout"}},
                                    {{"plugin", "csv"}, {"config", {{"path", dir_.file("out.csv")}}}},
                                    {{"plugin", "json"}, {"config", {{"path", dir_.file("out.json")}}}}}},
                     {"settings", settings}};
    write_file(dir_.file("pipeline.json"), pipeline.dump(2));
    return dir_.file("pipeline.json");
  }

  RunOutput run(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {etl_host_binary(), "run", dir_.file("pipeline.json"), "--plugin-path",
                                     test_plugins("good")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunOutput result;
    result.process = run_process(argv);
    for (const auto& line : lines_of(result.process.out)) {
      if (!line.starts_with("#")) result.stdout_records.push_back(line);
    }
    result.report = json::parse(read_file(dir_.file("out.json")));
    result.csv = lines_of(read_file(dir_.file("out.csv")));
    return result;
  }

  TempDir dir_;
};

TEST_F(HostRun, ARecordATransformDropsIsDroppedInEveryReportAndInTheSummary) {
  // A filter: odd numbers dropped by validate (on_failure: drop). They must not look stored.
  json pipeline = json::parse(read_file(write_pipeline({{"count", 10}}, {{"mode", "ok"}})));
  pipeline["transforms"] = json::parse(
      R"([{"plugin": "validate", "config": {"on_failure": "drop", "rules": {"n": {"regex": "^[0-9]*[02468]$"}}}}])");
  write_file(dir_.file("pipeline.json"), pipeline.dump(2));
  const auto result = run({"--summary-json", dir_.file("summary.json")});
  ASSERT_EQ(result.process.exit_code, 0) << result.process.err;
  std::size_t dropped_lines = 0, ok_lines = 0;
  for (const auto& line : result.stdout_records) {
    if (line.starts_with("DROP")) ++dropped_lines;
    if (line.starts_with("OK")) ++ok_lines;
  }
  EXPECT_EQ(dropped_lines, 5u) << result.process.out;
  EXPECT_EQ(ok_lines, 5u) << result.process.out;
  EXPECT_NE(result.process.out.find("received 10, ok 5, dropped 5, rejected 0"), std::string::npos)
      << result.process.out;
  EXPECT_NE(result.process.err.find("ok 5, dropped 5"), std::string::npos) << result.process.err;
  const json summary = json::parse(read_file(dir_.file("summary.json")));
  EXPECT_EQ(summary.at("ok"), 5);
  EXPECT_EQ(summary.at("dropped"), 5);
  EXPECT_EQ(result.report.at("summary").at("dropped"), 5);
  std::size_t dropped = 0;
  for (const auto& record : result.report.at("records")) {
    const int n = std::stoi(record.at("record").at("n").get<std::string>());
    EXPECT_EQ(record.at("status"), n % 2 == 1 ? "dropped" : "ok") << record.dump();
    if (record.at("status") == "dropped") {
      ++dropped;
      EXPECT_EQ(record.at("stage"), "transform");
      EXPECT_EQ(record.at("code"), "validate.regex");
    }
  }
  EXPECT_EQ(dropped, 5u);
  std::size_t csv_dropped = 0;
  for (const auto& line : result.csv) csv_dropped += line.find(",dropped,transform,validate.regex,") != std::string::npos;
  EXPECT_EQ(csv_dropped, 5u) << read_file(dir_.file("out.csv"));
}

TEST_F(HostRun, EveryRecordIsReportedOnceInEveryReport) {
  write_pipeline({{"count", 2500}}, {{"mode", "reject_odd"}}, {{"batch_size", 100}});
  const auto result = run();
  ASSERT_EQ(result.process.exit_code, 0) << result.process.err;
  ASSERT_EQ(result.stdout_records.size(), 2500u);
  ASSERT_EQ(result.csv.size(), 2501u);
  EXPECT_EQ(result.csv[0], "n,status,stage,code,error,origin,detail,extra");
  ASSERT_EQ(result.report.at("records").size(), 2500u);
  std::set<std::string> seen;
  for (const auto& record : result.report.at("records")) {
    const auto n = record.at("record").at("n").get<std::string>();
    EXPECT_TRUE(seen.insert(n).second) << "reported twice: " << n;
    EXPECT_EQ(record.at("status"), (std::stoi(n) % 2 == 1) ? "rejected" : "ok");
  }
  EXPECT_EQ(result.report.at("summary").at("ok"), 1250);
  EXPECT_EQ(result.report.at("summary").at("rejected"), 1250);
  EXPECT_NE(result.process.out.find("# summary: requested 2500, received 2500, ok 1250, rejected 1250, failed 0"),
            std::string::npos);
  EXPECT_EQ(result.stdout_records[0], "ERR 1  rejected 23514: odd value");
}

TEST_F(HostRun, DuplicateOutcomesFromASinkAreReportedOnceAndFailTheRun) {
  write_pipeline({{"count", 10}}, {{"mode", "duplicate"}});
  const auto result = run();
  // A protocol error of the plugin: the exit code says so, each record keeps its first outcome.
  EXPECT_EQ(result.process.exit_code, 6) << result.process.err;
  EXPECT_EQ(result.stdout_records.size(), 10u);
  ASSERT_EQ(result.report.at("records").size(), 10u);
  for (const auto& record : result.report.at("records")) EXPECT_EQ(record.at("status"), "ok");
  EXPECT_NE(result.process.err.find("not awaiting one"), std::string::npos);
  EXPECT_NE(result.process.err.find("sink 'test-sink' broke the outcome protocol: it delivered 10 outcome(s)"),
            std::string::npos)
      << result.process.err;
  // Logged for the first five, then counted.
  std::size_t logged = 0;
  for (std::size_t at = 0; (at = result.process.err.find("which is not awaiting one", at)) != std::string::npos; ++at) ++logged;
  EXPECT_EQ(logged, 5u) << result.process.err;
}

TEST_F(HostRun, RecordsASinkForgetsAreReportedFailedAndTheRunFails) {
  write_pipeline({{"count", 10}}, {{"mode", "forget"}});
  const auto result = run();
  EXPECT_EQ(result.process.exit_code, 6);
  ASSERT_EQ(result.report.at("records").size(), 10u);
  for (const auto& record : result.report.at("records")) EXPECT_EQ(record.at("status"), "failed");
  EXPECT_NE(result.process.err.find("without an outcome for 10 record(s)"), std::string::npos) << result.process.err;
}

TEST_F(HostRun, SinkExceptionNamesPluginAndStageAndEveryRecordIsStillReported) {
  write_pipeline({{"count", 10}}, {{"mode", "throw"}, {"throw_on_write", 2}}, {{"batch_size", 3}});
  const auto result = run();
  EXPECT_EQ(result.process.exit_code, 6);
  EXPECT_NE(result.process.err.find("plugin 'test-sink' failed in stage 'write': disk on fire"), std::string::npos)
      << result.process.err;
  // Batch 1 was written; batch 2 failed; nothing more was read.
  ASSERT_EQ(result.report.at("records").size(), 6u);
  EXPECT_EQ(result.report.at("summary").at("ok"), 3);
  EXPECT_EQ(result.report.at("summary").at("failed"), 3);
  EXPECT_EQ(result.report.at("summary").at("completed"), false);
  EXPECT_EQ(result.csv.size(), 7u);
}

TEST_F(HostRun, SinkThatCannotOpen) {
  write_pipeline({{"count", 10}}, {{"mode", "open_fails"}});
  const auto result = run();
  EXPECT_EQ(result.process.exit_code, 6);
  EXPECT_NE(result.process.err.find("plugin 'test-sink' failed in stage 'open': cannot reach"), std::string::npos);
  EXPECT_TRUE(result.report.at("records").empty());
}

TEST_F(HostRun, SourceFailureSettlesWhatWasReceived) {
  write_pipeline({{"count", 10}, {"fail_after", 5}}, {{"mode", "ok"}}, {{"batch_size", 2}});
  const auto result = run();
  EXPECT_EQ(result.process.exit_code, 5);
  EXPECT_NE(result.process.err.find("plugin 'test-counter' failed in stage 'read': counter broke after 5"),
            std::string::npos);
  // Records the source yielded before it threw (the 5th in the failing call) are reported too.
  EXPECT_EQ(result.report.at("records").size(), 5u);
  EXPECT_EQ(result.report.at("summary").at("received"), 5);
}

TEST_F(HostRun, ErrorBudgetAsACountStopsTheRun) {
  write_pipeline({{"count", 5000}}, {{"mode", "reject_odd"}}, {{"batch_size", 50}, {"max_rejected", 10}});
  const auto result = run();
  EXPECT_EQ(result.process.exit_code, 8) << result.process.err;
  EXPECT_NE(result.process.err.find("error budget exceeded"), std::string::npos);
  const auto received = result.report.at("summary").at("received").get<std::size_t>();
  EXPECT_LT(received, 5000u);
  EXPECT_EQ(result.report.at("records").size(), received);  // everything received is reported
  EXPECT_GT(result.report.at("summary").at("rejected").get<int>(), 10);
}

TEST_F(HostRun, ErrorBudgetAsAPercentage) {
  write_pipeline({{"count", 400}}, {{"mode", "reject_odd"}}, {{"batch_size", 50}, {"max_rejected", "40%"}});
  EXPECT_EQ(run().process.exit_code, 8);
  write_pipeline({{"count", 400}}, {{"mode", "reject_odd"}}, {{"batch_size", 50}, {"max_rejected", "60%"}});
  const auto within = run();
  EXPECT_EQ(within.process.exit_code, 0) << within.process.err;
  EXPECT_EQ(within.report.at("records").size(), 400u);
  write_pipeline({{"count", 4}}, {{"mode", "ok"}}, {{"max_rejected", "lots"}});
  const auto invalid = run_process({etl_host_binary(), "validate", dir_.file("pipeline.json"), "--plugin-path", test_plugins("good")});
  EXPECT_EQ(invalid.exit_code, 3);
  EXPECT_NE(invalid.err.find("/settings/max_rejected"), std::string::npos) << invalid.err;
}

TEST_F(HostRun, SetOverridesAndSummaryJson) {
  write_pipeline({{"count", 10}}, {{"mode", "ok"}});
  const auto result = run({"--set", "source.config.count=4", "--summary-json", dir_.file("summary.json")});
  EXPECT_EQ(result.process.exit_code, 0);
  EXPECT_EQ(result.stdout_records.size(), 4u);
  const auto summary = json::parse(read_file(dir_.file("summary.json")));
  EXPECT_EQ(summary.at("ok"), 4);
  EXPECT_EQ(summary.at("exit_code"), 0);
}

TEST_F(HostRun, LogsGoToStderrAndDataToStdout) {
  write_pipeline({{"count", 3}}, {{"mode", "ok"}});
  const auto result = run();
  for (const auto& line : lines_of(result.process.out)) {
    EXPECT_TRUE(line.starts_with("OK  ") || line.starts_with("# ")) << line;
  }
  EXPECT_NE(result.process.err.find("summary:"), std::string::npos);
}

TEST_F(HostRun, ValidateChecksWithoutRunning) {
  write_pipeline({{"count", 3}}, {{"mode", "open_fails"}});
  auto result = run_process({etl_host_binary(), "validate", dir_.file("pipeline.json"), "--plugin-path",
                             test_plugins("good")});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("valid"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir_.file("out.csv")));
}

TEST_F(HostRun, PluginByPathAndRefusedLibraries) {
  write_pipeline({{"count", 3}}, {{"mode", "ok"}});
  for (const auto& [file, expected] : std::vector<std::pair<std::string, std::string>>{
           {test_plugins("bad") + "/etl-test-not-a-plugin.so", "not an etl-host plugin"},
           {test_plugins("bad") + "/etl-test-abi-mismatch.so", "SDK ABI version 42"},
           {test_plugins("good") + "/missing.so", "no such plugin file"}}) {
    const auto result = run_process({etl_host_binary(), "validate", dir_.file("pipeline.json"), "--plugin-path",
                                     test_plugins("good"), "--set", "source.plugin=" + file});
    EXPECT_EQ(result.exit_code, 4) << file;
    EXPECT_NE(result.err.find(file), std::string::npos) << result.err;
    EXPECT_NE(result.err.find(expected), std::string::npos) << result.err;
  }
  const auto by_path = run_process({etl_host_binary(), "validate", dir_.file("pipeline.json"), "--set",
                                    "source.plugin=" + test_plugins("good") + "/etl-test-counter.so", "--set",
                                    "sink.plugin=" + test_plugins("good") + "/etl-test-sink.so"});
  EXPECT_EQ(by_path.exit_code, 0) << by_path.err;
}

TEST_F(HostRun, CommandLineErrors) {
  EXPECT_EQ(run_process({etl_host_binary()}).exit_code, 2);
  EXPECT_EQ(run_process({etl_host_binary(), "frobnicate"}).exit_code, 2);
  EXPECT_EQ(run_process({etl_host_binary(), "run"}).exit_code, 2);
  EXPECT_EQ(run_process({etl_host_binary(), "run", "a.json", "b.json"}).exit_code, 2);
  EXPECT_EQ(run_process({etl_host_binary(), "--bogus-option"}).exit_code, 2);
  EXPECT_EQ(run_process({etl_host_binary(), "run", "x.json", "--set", "novalue"}).exit_code, 2);
  const auto missing = run_process({etl_host_binary(), "run", dir_.file("missing.json")});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_NE(missing.err.find("missing.json: cannot open"), std::string::npos) << missing.err;
  const auto help = run_process({etl_host_binary(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("validate PIPELINE"), std::string::npos);
  const auto version = run_process({etl_host_binary(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_NE(version.out.find("ABI " + std::to_string(ETL_SDK_ABI_VERSION)), std::string::npos);
}

TEST_F(HostRun, SchemaCommandFoldsInPluginSchemas) {
  const auto result = run_process({etl_host_binary(), "schema"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto schema = json::parse(result.out);
  const auto sources = schema.at("$defs").at("source").at("oneOf");
  bool found = false;
  for (const auto& variant : sources) {
    if (variant.at("properties").at("plugin").at("enum").at(0) == "http-newline") {
      found = true;
      EXPECT_TRUE(variant.at("properties").at("config").at("properties").contains("max_per_request"));
    }
  }
  EXPECT_TRUE(found);

  // Checked by an independent validator (python3-jsonschema, Draft 2020-12), as an editor
  // would: the schema itself is valid, the shipped pipelines pass, a broken one fails twice.
  TempDir dir;
  write_file(dir.file("schema.json"), result.out);
  json broken = json::parse(read_file(source_dir() + "/pipelines/tokens.json"));
  broken["source"]["config"]["sizee"] = 5;
  broken["sink"]["config"]["port"] = "five";
  write_file(dir.file("broken.json"), broken.dump());
  const std::string checker = R"(
import glob, json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
for path in sorted(glob.glob(sys.argv[2] + "/*.json")):
    errors = list(validator.iter_errors(json.load(open(path))))
    print(path, len(errors), "; ".join(e.message for e in errors)[:300])
errors = list(validator.iter_errors(json.load(open(sys.argv[3]))))
print("broken", len(errors))
)";
  write_file(dir.file("check.py"), checker);
  // Debian's python3, where python3-jsonschema is installed (not a pyenv one on PATH).
  const auto checked = run_process({"/usr/bin/python3", dir.file("check.py"), dir.file("schema.json"), source_dir() + "/pipelines",
                                    dir.file("broken.json")});
  ASSERT_EQ(checked.exit_code, 0) << checked.err;
  const auto lines = lines_of(checked.out);
  ASSERT_GE(lines.size(), 2u) << checked.out;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    EXPECT_NE(lines[i].find(".json 0"), std::string::npos) << lines[i];
  }
  // Both faults; oneOf over the sources and sinks reports each as one error of its stage.
  EXPECT_EQ(lines.back(), "broken 2") << checked.out;
}

}  // namespace
}  // namespace etl::testing
