// json-files with the real etl-host: csv-file rows become one JSON file each, atomically,
// inside the folder; names that would leave it are rejected, and nothing else is written.

#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

class JsonFiles : public ::testing::Test {
 protected:
  std::string pipeline(json sink_config) {
    json pipeline = {{"source", {{"plugin", "csv-file"},
                                 {"config", {{"path", dir_.file("reports.csv")}, {"types", {{"tasks", "integer"}, {"body", "json"}}}}}}},
                     {"sink", {{"plugin", "json-files"}, {"config", sink_config}}},
                     {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file("run.json")}}}}}},
                     {"settings", {{"progress_interval", 0}}}};
    write_file(dir_.file("p.json"), pipeline.dump());
    return dir_.file("p.json");
  }
  json outcome_of(int line) const {
    const json report = json::parse(read_file(dir_.file("run.json")));
    for (const auto& record : report.at("records")) {
      if (record.at("origin") == dir_.file("reports.csv") + ":" + std::to_string(line)) return record;
    }
    ADD_FAILURE() << "no record from line " << line << " in " << report.dump();
    return json::object({{"code", nullptr}, {"detail", json::object({{"path", nullptr}})}});
  }
  TempDir dir_;
};

TEST_F(JsonFiles, EachRecordIsOneFileNamedFromItsFieldsAndNoneLeavesTheFolder) {
  write_file(dir_.file("reports.csv"),
             "user_id,start,tasks,body\n"
             "7,2026-12-01,3,\"{\"\"done\"\": [1, 2]}\"\n"
             "8,2026-12-01,0,{}\n"
             "../../escape,2026-12-01,1,{}\n"
             ",2026-12-01,1,{}\n");
  const std::string out = dir_.file("out");
  const auto run = run_process({etl_host_binary(), "run",
                                pipeline({{"directory", out}, {"path", "task_report_{user_id}_{start}.json"}})});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  const json seven = json::parse(read_file(out + "/task_report_7_2026-12-01.json"));
  EXPECT_EQ(seven, json({{"user_id", "7"}, {"start", "2026-12-01"}, {"tasks", 3}, {"body", {{"done", {1, 2}}}}}));
  EXPECT_TRUE(fs::exists(out + "/task_report_8_2026-12-01.json"));
  EXPECT_EQ(outcome_of(2).at("detail").at("path"), out + "/task_report_7_2026-12-01.json");
  EXPECT_EQ(outcome_of(4).at("code"), "path_escape");
  EXPECT_EQ(outcome_of(5).at("code"), "missing_field");
  // Exactly the two files, and no temporary one left behind.
  std::vector<std::string> names;
  for (const auto& entry : fs::recursive_directory_iterator(dir_.path())) {
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"p.json", "reports.csv", "run.json", "task_report_7_2026-12-01.json",
                                             "task_report_8_2026-12-01.json"}));
}

TEST_F(JsonFiles, OneFieldAsTheDocumentAndNoOverwrite) {
  write_file(dir_.file("reports.csv"), "user_id,start,tasks,body\n1,a,1,\"[1]\"\n1,a,2,\"[2]\"\n");
  const std::string out = dir_.file("out");
  const auto run = run_process({etl_host_binary(), "run",
                                pipeline({{"directory", out}, {"path", "{user_id}.json"}, {"field", "body"},
                                          {"overwrite", false}, {"indent", -1}})});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(read_file(out + "/1.json"), "[1]\n");
  EXPECT_EQ(outcome_of(3).at("code"), "exists");
}

TEST_F(JsonFiles, ATemplateThatLeavesTheFolderIsRefusedBeforeTheRun) {
  write_file(dir_.file("reports.csv"), "user_id\n1\n");
  const auto run = run_process({etl_host_binary(), "run", pipeline({{"path", "../{user_id}.json"}})});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_NE(run.err.find("/sink/config/path"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace etl::testing
