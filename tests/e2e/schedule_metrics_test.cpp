// `etl-host schedule` and run metrics, with the real binary, a real PostgreSQL server, the
// token-source emulator and Debian's prometheus-pushgateway, all on loopback.

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <thread>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <nlohmann/json.hpp>

#include "test_support.hpp"
#include "tokens_job_fixture.hpp"

namespace etl::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

using Shipping = TokensJobTest;

TEST_F(Shipping, ScheduleEveryRunsUntilMaxRuns) {
  const auto started = std::chrono::steady_clock::now();
  const auto run = run_process({etl_host_binary(), "schedule", "pipelines/tokens.json", "--every", "1s", "--max-runs", "3"},
                               environment());
  const auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(count(run.err, "etl-host: summary:"), 3u) << run.err;
  EXPECT_NE(run.err.find("run 3 starts"), std::string::npos);
  EXPECT_GE(took, 2s);  // runs at 0 s, 1 s and 2 s
  EXPECT_EQ(ok_tokens(run.out), table());
  EXPECT_EQ(count(run.out, "# summary:"), 3u);
}

TEST_F(Shipping, AnOverrunningRunDelaysTheNextAndSaysSo) {
  const auto run = run_process({etl_host_binary(), "schedule", "pipelines/tokens.json", "--every", "500ms", "--max-runs", "2"},
                               environment("mode=slow&delay_ms=400", 30));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("overran its schedule"), std::string::npos) << run.err;
  EXPECT_EQ(count(run.err, "etl-host: summary:"), 2u);
}

TEST_F(Shipping, BadScheduleArguments) {
  for (const auto& arguments : std::vector<std::vector<std::string>>{
           {"--every", "soon"}, {"--cron", "* * *"}, {"--every", "1s", "--cron", "* * * * *"}, {}, {"--every", "1s", "--max-runs", "0"}}) {
    std::vector<std::string> argv = {etl_host_binary(), "schedule", "pipelines/tokens.json"};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    const auto run = run_process(argv, environment());
    EXPECT_EQ(run.exit_code, 2) << run.err;
  }
}

TEST_F(Shipping, SigtermBetweenRunsExitsAtOnce) {
  BackgroundProcess schedule({etl_host_binary(), "schedule", "pipelines/tokens.json", "--every", "1h"}, environment());
  // Between runs: the first one (10 tokens) is over and the next slot is announced.
  ASSERT_TRUE(schedule.wait_for_err("schedule: next run at")) << schedule.err();
  const auto signalled = std::chrono::steady_clock::now();
  schedule.signal(SIGTERM);
  EXPECT_EQ(schedule.wait(10s), 0) << schedule.err();
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 2s);
  EXPECT_NE(schedule.err().find("stopped between runs"), std::string::npos) << schedule.err();
  EXPECT_EQ(ok_tokens(schedule.out()), table());
}

TEST_F(Shipping, SigtermDuringARunStopsItGracefully) {
  // 100 tokens sent 10 at a time, one block a second: the run would take 10 s.
  BackgroundProcess schedule({etl_host_binary(), "schedule", "pipelines/tokens.json", "--every", "1h"},
                             environment("mode=slow&delay_ms=1000", 100));
  // Mid-run: the first rows are stored, the rest still to come.
  ASSERT_TRUE(eventually([&] { return !table().empty(); })) << schedule.err();
  const auto signalled = std::chrono::steady_clock::now();
  schedule.signal(SIGTERM);
  EXPECT_EQ(schedule.wait(15s), 143) << schedule.err();
  EXPECT_LT(std::chrono::steady_clock::now() - signalled, 10s);
  // The partial run is fully reported and the reports are valid.
  const json report = json::parse(read_file(reports_.file("reports/tokens.json")));
  EXPECT_EQ(report.at("summary").at("completed"), false);
  EXPECT_EQ(report.at("summary").at("exit_code"), 143);
  EXPECT_EQ(report.at("records").size(), report.at("summary").at("received").get<std::size_t>());
  EXPECT_LT(report.at("records").size(), 100u);
  EXPECT_EQ(ok_tokens(schedule.out()), table());
}

class Pushgateway {
 public:
  Pushgateway() : port_(free_port()) {
    process_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{
        "/usr/bin/prometheus-pushgateway", "--web.listen-address=127.0.0.1:" + std::to_string(port_)});
    for (int i = 0; i < 100 && metrics().empty(); ++i) std::this_thread::sleep_for(100ms);
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string metrics() const {
    try {
      Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port_));
      Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/metrics");
      session.sendRequest(request);
      Poco::Net::HTTPResponse response;
      std::string body;
      Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
      return body;
    } catch (const std::exception&) {
      return {};
    }
  }
  /// The value of the metric line that starts with `name{` and contains every label given.
  [[nodiscard]] std::optional<double> value(const std::string& name, const std::vector<std::string>& labels) const {
    for (const auto& line : lines_of(metrics())) {
      if (!line.starts_with(name + "{")) continue;
      bool all = true;
      for (const auto& label : labels) all = all && line.find(label) != std::string::npos;
      if (all) return std::stod(line.substr(line.rfind(' ') + 1));
    }
    return std::nullopt;
  }

 private:
  int port_;
  std::unique_ptr<BackgroundProcess> process_;
};

TEST_F(Shipping, RunMetricsArePushedToThePushgateway) {
  Pushgateway gateway;
  ASSERT_FALSE(gateway.metrics().empty()) << "prometheus-pushgateway did not start";
  const auto run = run_process({etl_host_binary(), "run", "pipelines/tokens.json", "--metrics-push", gateway.url(),
                                "--summary-json", reports_.file("summary.json")},
                               environment("", 40));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json summary = json::parse(read_file(reports_.file("summary.json")));
  const std::vector<std::string> group = {"job=\"etl-host\"", "pipeline=\"tokens\""};
  auto with = [&](std::string label) {
    auto labels = group;
    labels.push_back(std::move(label));
    return labels;
  };
  EXPECT_EQ(gateway.value("etl_records", with("status=\"ok\"")), summary.at("ok").get<double>());
  EXPECT_EQ(gateway.value("etl_records", with("status=\"rejected\"")), summary.at("rejected").get<double>());
  EXPECT_EQ(gateway.value("etl_records", with("status=\"failed\"")), 0.0);
  EXPECT_EQ(gateway.value("etl_records_received", group), 40.0);
  EXPECT_EQ(gateway.value("etl_run_exit_code", group), 0.0);
  EXPECT_GT(gateway.value("etl_run_rows_per_second", group).value_or(0), 0.0);
  EXPECT_GT(gateway.value("etl_run_duration_seconds", group).value_or(0), 0.0);
  const auto last_success = gateway.value("etl_last_success_timestamp_seconds", group);
  ASSERT_TRUE(last_success.has_value());

  // A failed run records its exit code and keeps the earlier success time.
  auto failing = environment();
  failing.set_env["DB_PORT"] = "1";
  failing.set_env["ETL_PUSHGATEWAY_URL"] = gateway.url();
  const auto failed = run_process({etl_host_binary(), "run", "pipelines/tokens.json"}, failing);
  EXPECT_EQ(failed.exit_code, 6);
  EXPECT_EQ(gateway.value("etl_run_exit_code", group), 6.0);
  EXPECT_EQ(gateway.value("etl_last_success_timestamp_seconds", group), last_success);
}

TEST_F(Shipping, UnreachablePushgatewayIsAWarningNotAFailure) {
  const auto run = run_process({etl_host_binary(), "run", "pipelines/tokens.json", "--metrics-push", "http://127.0.0.1:1"},
                               environment());
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("pushing metrics to http://127.0.0.1:1 failed"), std::string::npos) << run.err;
}

TEST_F(Shipping, ProgressLinesGoToStderrOnly) {
  const auto run = run_process({etl_host_binary(), "run", "pipelines/tokens.json", "--set", "settings.progress_interval=0.05"},
                               environment("mode=slow&delay_ms=100", 60));
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("progress: received"), std::string::npos) << run.err;
  EXPECT_EQ(run.out.find("progress"), std::string::npos);
}

}  // namespace
}  // namespace etl::testing
