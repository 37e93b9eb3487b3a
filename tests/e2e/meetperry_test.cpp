// The meetperry webhook receiver and its reports (pipelines/meetperry-webhook.json,
// pipelines/meetperry-reports.json): the real etl-host with http-server, validate, map and
// postgres against a real PostgreSQL, driven by curl (the original service's own test list) and
// an HTTP client over sockets; the reports by `etl-host schedule` with postgres-query and
// json-files.

#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <map>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json event(const std::string& kind, const std::string& timestamp, const std::string& user, const std::string& id,
           bool completed = false) {
  return {{"event", kind},
          {"timestamp", timestamp},
          {"metadata", {{"userId", user}, {"id", id}, {"content", "task " + id}, {"isCompleted", completed}}}};
}

/// 2026-12-01T10:00:00Z for a time_t.
std::string utc(std::time_t at) {
  std::tm parts{};
  gmtime_r(&at, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::time_t parse_utc(const std::string& text) {
  std::tm parts{};
  strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return timegm(&parts);
}

class Meetperry : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = std::make_unique<PostgresServer>();
    const std::string tables = "SET client_min_messages = warning;\n" + read_file(source_dir() + "/pipelines/sql/meetperry.sql");
    for (int i = 0; i < 2; ++i) database_->query(tables);  // idempotent
    database_->query("GRANT USAGE ON SCHEMA meetperry TO etl; GRANT ALL ON ALL TABLES IN SCHEMA meetperry TO etl; "
                     "GRANT ALL ON ALL SEQUENCES IN SCHEMA meetperry TO etl");
  }
  static void TearDownTestSuite() { database_.reset(); }

  void SetUp() override {
    database_->query("TRUNCATE meetperry.task");
    port_ = free_port();
    ProcessOptions options = environment();
    options.set_env["HTTP_PORT"] = std::to_string(port_);
    receiver_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{etl_host_binary(), "run", "pipelines/meetperry-webhook.json"}, options);
    ASSERT_TRUE(eventually([&] { return http_request(port_, "GET", "/readyz").status == 200; }, 30s)) << receiver_->err();
  }
  void TearDown() override {
    if (receiver_) {
      receiver_->signal(SIGTERM);
      receiver_->wait(30s);
    }
  }

  ProcessOptions environment() {
    ProcessOptions options;
    options.set_env = database_->env();
    options.set_env["REPORT_DIR"] = reports_.path().string();
    options.working_dir = source_dir();
    return options;
  }

  /// The status curl got for POST /webhook with `body`, and the body it got.
  HttpReply curl(const std::string& body) {
    const auto result = run_process({"/usr/bin/curl", "-sS", "-o", "-", "-w", "\n%{http_code}", "-X", "POST", "-H",
                                     "Content-Type: application/json", "--data-binary", body,
                                     "http://127.0.0.1:" + std::to_string(port_) + "/webhook"});
    const auto newline = result.out.rfind('\n');
    if (result.exit_code != 0 || newline == std::string::npos) return {-1, result.err, {}};
    return {std::stoi(result.out.substr(newline + 1)), result.out.substr(0, newline), {}};
  }
  HttpReply post(const std::string& body) { return http_request(port_, "POST", "/webhook", body); }
  std::string task_value(const std::string& column, const std::string& id) {
    const auto rows = database_->query("SELECT coalesce(" + column + "::text, 'NULL') FROM meetperry.task WHERE external_id = '" + id + "'");
    return rows.empty() ? "no row" : rows.at(0).at(0);
  }
  std::string tasks() { return database_->query("SELECT count(*) FROM meetperry.task").at(0).at(0); }

  static inline std::unique_ptr<PostgresServer> database_;
  TempDir reports_;
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> receiver_;
};

// The original service's own test list, sent with curl.
TEST_F(Meetperry, TheOriginalTestList) {
  const auto created = curl(event("created", "2026-12-01T10:00:00Z", "u1", "t1").dump());
  EXPECT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(json::parse(created.body).at("id"), "t1");
  EXPECT_EQ(task_value("user_id", "t1"), "u1");
  EXPECT_EQ(task_value("completed_date", "t1"), "NULL");
  EXPECT_EQ(task_value("created_date", "t1"), "2026-12-01 10:00:00+00");

  const auto duplicate = curl(event("created", "2026-12-01T10:01:00Z", "u1", "t1").dump());
  EXPECT_EQ(duplicate.status, 409) << duplicate.body;
  EXPECT_EQ(json::parse(duplicate.body).at("code"), "23505");

  EXPECT_EQ(curl(event("updated", "2026-12-01T10:05:00Z", "u1", "t1", true).dump()).status, 200);
  EXPECT_EQ(task_value("completed_date", "t1"), "2026-12-01 10:05:00+00");
  const auto unknown_update = curl(event("updated", "2026-12-01T10:05:00Z", "u1", "nope", true).dump());
  EXPECT_EQ(unknown_update.status, 404) << unknown_update.body;

  EXPECT_EQ(curl(event("deleted", "2026-12-01T10:06:00Z", "u1", "t1").dump()).status, 200);
  EXPECT_EQ(task_value("deleted_date", "t1"), "2026-12-01 10:06:00+00");
  EXPECT_EQ(curl(event("deleted", "2026-12-01T10:06:00Z", "u1", "nope").dump()).status, 404);

  const auto nonsense = curl(event("archived", "2026-12-01T10:07:00Z", "u1", "t1").dump());
  EXPECT_EQ(nonsense.status, 400) << nonsense.body;
  EXPECT_EQ(json::parse(nonsense.body).at("code"), "validate.enum");
  EXPECT_EQ(tasks(), "1");
}

// Malformed and mistyped bodies answer 400 with the reason, an oversized one 413: never a 500,
// and nothing reaches the table.
TEST_F(Meetperry, BadBodiesAreAnsweredWithTheReasonNeverA500) {
  json wrong_user = event("created", "2026-12-01T10:00:00Z", "u1", "t1");
  wrong_user["metadata"]["userId"] = 42;
  json wrong_flag = event("created", "2026-12-01T10:00:00Z", "u1", "t2");
  wrong_flag["metadata"]["isCompleted"] = "yes";
  json no_metadata = event("created", "2026-12-01T10:00:00Z", "u1", "t3");
  no_metadata.erase("metadata");
  json metadata_text = event("created", "2026-12-01T10:00:00Z", "u1", "t4");
  metadata_text["metadata"] = "u1/t4";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"event\": \"created\",", "http.json"},
      {"[1, 2, 3]", "http.json"},
      {"", "validate.required"},
      {wrong_user.dump(), "validate.type"},
      {wrong_flag.dump(), "validate.type"},
      {no_metadata.dump(), "validate.required"},
      {metadata_text.dump(), "validate.type"},
      // Timestamps are RFC 3339 with an offset: the pipeline's own rule, never the database's 22007.
      {event("created", "next tuesday", "u1", "t5").dump(), "validate.timestamp"},
      {event("created", "now", "u1", "t5").dump(), "validate.timestamp"},
      {event("created", "epoch", "u1", "t5").dump(), "validate.timestamp"},
      {event("created", "infinity", "u1", "t5").dump(), "validate.timestamp"},
      {event("created", "2026-12-01T10:00:00", "u1", "t5").dump(), "validate.timestamp"},
      {std::string(R"({"event": "created", "timestamp": "2026-12-01T10:00:00Z", "metadata": {"userId": "u)") + "\xff" +
           R"(", "id": "t6", "content": "x", "isCompleted": false}})",
       "invalid_utf8"},
  };
  for (const auto& [body, code] : cases) {
    const HttpReply reply = post(body);
    EXPECT_EQ(reply.status, 400) << body << " -> " << reply.body;
    if (reply.status == 400) { EXPECT_EQ(json::parse(reply.body).at("code"), code) << body; }
  }
  const HttpReply huge = post(std::string(10 * 1024 * 1024, ' ') + event("created", "2026-12-01T10:00:00Z", "u1", "t7").dump());
  EXPECT_EQ(huge.status, 413) << huge.body;
  EXPECT_EQ(http_request(port_, "GET", "/webhook").status, 405);
  EXPECT_EQ(tasks(), "0");
  // And the receiver still takes good events.
  EXPECT_EQ(post(event("created", "2026-12-01T10:00:00Z", "u1", "t8").dump()).status, 200);
  EXPECT_EQ(tasks(), "1");
}

// 1,000 webhooks at once, each on its own connection: every one answered 200, every one in the
// table and in the report.
TEST_F(Meetperry, AThousandConcurrentWebhooksLoseNothing) {
  constexpr int kClients = 1000;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<int> ok{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      ++ready;
      while (!go) std::this_thread::yield();
      const HttpReply reply =
          post(event("created", "2026-12-01T10:00:00Z", "user" + std::to_string(i % 37), "task" + std::to_string(i)).dump());
      if (reply.status == 200) {
        ++ok;
      } else {
        std::lock_guard lock(failures_mutex);
        failures.push_back(std::to_string(reply.status) + " " + reply.body);
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return ready == kClients; }, 60s));
  go = true;
  for (auto& client : clients) client.join();
  EXPECT_EQ(ok.load(), kClients) << failures.size() << " failed, the first: " << (failures.empty() ? "" : failures.front());
  EXPECT_EQ(tasks(), std::to_string(kClients));
  receiver_->signal(SIGTERM);
  EXPECT_EQ(receiver_->wait(30s), 143) << receiver_->err();
  receiver_.reset();
  int reported_ok = 0;
  for (const auto& line : lines_of(read_file(reports_.file("meetperry-webhook.jsonl")))) {
    const json entry = json::parse(line);
    if (entry.contains("status") && entry.at("status") == "ok") ++reported_ok;
  }
  EXPECT_EQ(reported_ok, kClients);
}

// `etl-host schedule ... --every 2s`: one report per user and window, the windows back to back,
// each event in the list of the window its timestamp or its arrival falls in, whichever is later
// (custom timestamps, some in windows still to come when they are sent, one an hour old: that
// one is in the report of the window it arrived in, not in none).
TEST_F(Meetperry, ReportsOnTheCadenceWithTasksInTheirWindows) {
  const std::time_t base = std::time(nullptr);
  struct Sent {
    std::string kind, user, id;
    std::time_t at;
    double reported = 0;  // greatest(timestamp, arrival), as the report query reads it
  };
  std::vector<Sent> events = {
      {"created", "ann", "a1", base - 1}, {"created", "ann", "a2", base + 1}, {"updated", "ann", "a2", base + 3},
      {"created", "bob", "b1", base + 2}, {"deleted", "bob", "b1", base + 5}, {"created", "old", "o1", base - 3600},
  };
  for (auto& sent : events) {
    ASSERT_EQ(post(event(sent.kind, utc(sent.at), sent.user, sent.id, sent.kind == "updated").dump()).status, 200)
        << sent.kind << " " << sent.id;
    const std::string column = sent.kind == "created" ? "created" : sent.kind == "updated" ? "completed" : "deleted";
    const std::string arrived = database_->query("SELECT extract(epoch FROM greatest(" + column + "_date, " + column +
                                                 "_arrived))::text FROM meetperry.task WHERE external_id = '" + sent.id + "'",
                                                 "tokens")
                                    .at(0)
                                    .at(0);
    sent.reported = std::stod(arrived);
    EXPECT_GE(sent.reported, static_cast<double>(sent.at));
  }
  const auto schedule = run_process({etl_host_binary(), "schedule", "pipelines/meetperry-reports.json", "--every", "2s",
                                     "--max-runs", "4"},
                                    environment());
  ASSERT_EQ(schedule.exit_code, 0) << schedule.err;

  // The windows, from the schedule's log: back to back, 2 s each after the first.
  std::vector<std::pair<std::time_t, std::time_t>> windows;
  const std::regex window_line(R"(run \d+ starts \(window (\S+) to (\S+)\))");
  for (std::sregex_iterator it(schedule.err.begin(), schedule.err.end(), window_line), end; it != end; ++it) {
    windows.emplace_back(parse_utc((*it)[1]), parse_utc((*it)[2]));
  }
  ASSERT_EQ(windows.size(), 4u) << schedule.err;
  for (std::size_t i = 0; i < windows.size(); ++i) {
    EXPECT_EQ(windows[i].second - windows[i].first, 2) << i;
    if (i > 0) { EXPECT_EQ(windows[i].first, windows[i - 1].second) << i; }
  }

  auto stamp = [](std::time_t at) {
    std::string text = utc(at);
    text.erase(std::remove(text.begin(), text.end(), '-'), text.end());
    text.erase(std::remove(text.begin(), text.end(), ':'), text.end());
    return text;  // 20261201T100000Z
  };
  std::size_t expected_files = 0;
  for (const auto& [start, end] : windows) {
    for (const std::string user : {"ann", "bob", "old"}) {
      std::map<std::string, int> expected = {{"created", 0}, {"completed", 0}, {"deleted", 0}};
      double first_created = 0;
      std::optional<double> deleted;
      for (const auto& sent : events) {
        if (sent.user != user) continue;
        if (sent.kind == "created" && (first_created == 0 || sent.reported < first_created)) first_created = sent.reported;
        if (sent.kind == "deleted") deleted = sent.reported;
        const std::string list = sent.kind == "updated" ? "completed" : sent.kind;
        if (sent.reported >= static_cast<double>(start) && sent.reported < static_cast<double>(end)) ++expected[list];
      }
      const std::string name = "task_report_" + user + "_" + stamp(start) + "_" + stamp(end) + ".json";
      const bool wanted = first_created < static_cast<double>(end) && (!deleted || *deleted >= static_cast<double>(start));
      ASSERT_EQ(std::filesystem::exists(reports_.file(name)), wanted) << name;
      if (!wanted) continue;
      ++expected_files;
      const json report = json::parse(read_file(reports_.file(name)));
      EXPECT_EQ(report.at("user_id"), user);
      for (const auto& [list, count] : expected) {
        EXPECT_EQ(report.at("counts").at(list), count) << name << " " << list;
        EXPECT_EQ(report.at(list).size(), static_cast<std::size_t>(count)) << name << " " << list;
      }
    }
  }
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(reports_.path())) {
    if (entry.path().filename().string().rfind("task_report_", 0) == 0) ++files;
  }
  EXPECT_EQ(files, expected_files);
  EXPECT_GE(expected_files, 4u);
}

}  // namespace
}  // namespace etl::testing
