// Graceful stop of `etl-host run` on SIGTERM and SIGINT, the second signal, and secrets kept out
// of everything printed; with the real binary, PostgreSQL and the emulator.

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "tokens_job_fixture.hpp"

namespace etl::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class StopAndSecrets : public TokensJobTest {
 protected:
  /// Checks the promise after a stopped run: valid reports holding every record received once,
  /// and the table holding exactly the records reported ok.
  void expect_settled(const std::string& out) const {
    const json report = json::parse(read_file(reports_.file("reports/tokens.json")));
    EXPECT_EQ(report.at("summary").at("completed"), false);
    const auto received = report.at("summary").at("received").get<std::size_t>();
    EXPECT_EQ(report.at("records").size(), received);
    EXPECT_EQ(lines_of(read_file(reports_.file("reports/tokens.csv"))).size(), received + 1);
    std::vector<std::string> ok;
    for (const auto& record : report.at("records")) {
      if (record.at("status") == "ok") ok.push_back(record.at("record").at("token"));
    }
    auto table = database_->tokens_in_table();
    std::sort(ok.begin(), ok.end());
    std::sort(table.begin(), table.end());
    EXPECT_EQ(table, ok);
    EXPECT_NE(out.find("# incomplete: stopped by a signal"), std::string::npos) << out;
  }
};

TEST_F(StopAndSecrets, SigtermMidRunSettlesAndExits143) {
  BackgroundProcess run({etl_host_binary(), "run", "pipelines/tokens.json"}, environment("mode=slow&delay_ms=500", 200));
  ASSERT_TRUE(eventually([&] { return !database_->tokens_in_table().empty(); })) << run.err();
  const auto signalled = std::chrono::steady_clock::now();
  run.signal(SIGTERM);
  EXPECT_EQ(run.wait(20s), 143) << run.err();
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 10s);
  expect_settled(run.out());
}

TEST_F(StopAndSecrets, SigintMidRunExits130) {
  BackgroundProcess run({etl_host_binary(), "run", "pipelines/tokens.json"}, environment("mode=slow&delay_ms=500", 200));
  ASSERT_TRUE(eventually([&] { return !database_->tokens_in_table().empty(); })) << run.err();
  run.signal(SIGINT);
  EXPECT_TRUE(run.wait_for_err("stopping:", 5s)) << run.err();
  EXPECT_EQ(run.wait(20s), 130) << run.err();
  expect_settled(run.out());
}

// The second signal is tested in hardening_test.cpp
// (ASecondSignalExitsAtOnceWithItsOwnCodeAndLeavesThePreviousReports): with the database's
// network stalled the graceful stop takes seconds, so the second signal surely lands during it,
// and its exit code (9) tells it apart from a graceful stop (143) or a default SIGTERM.

TEST_F(StopAndSecrets, PasswordsNeverPrinted) {
  const std::string password = database_->get("DB_PASS");
  auto options = environment("", 5);
  // A wrong password, so the failure path prints its messages too.
  options.set_env["DB_PASS"] = "wrong-" + password;
  const auto failed = run_process({etl_host_binary(), "run", "pipelines/tokens.json", "--log-level", "debug"}, options);
  EXPECT_EQ(failed.exit_code, 6);
  EXPECT_EQ(failed.err.find("wrong-" + password), std::string::npos) << failed.err;
  const auto printed = run_process({etl_host_binary(), "validate", "pipelines/tokens.json", "--json"}, environment("", 5));
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_EQ(json::parse(printed.out).at("sink").at("config").at("password"), "***");
  EXPECT_EQ(printed.out.find(password), std::string::npos);
}

TEST_F(StopAndSecrets, PasswordFromAFile) {
  write_file(reports_.file("db_pass"), database_->get("DB_PASS") + "\n");
  auto options = environment("", 5);
  options.set_env.erase("DB_PASS");
  options.unset_env.push_back("DB_PASS");
  options.set_env["DB_PASS_FILE"] = reports_.file("db_pass");
  const auto run = run_process({etl_host_binary(), "run", "pipelines/tokens.json"}, options);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err.find(database_->get("DB_PASS")), std::string::npos);
}

}  // namespace
}  // namespace etl::testing
