// The hello-birthday API (pipelines/birthday-api.json): the real etl-host with http-server,
// validate and postgres against a real PostgreSQL, driven by a real HTTP client over a socket.

#include <gtest/gtest.h>

#include <signal.h>

#include <ctime>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

using Reply = HttpReply;

/// YYYY-MM-DD of today + `days`, `years_back` years ago (UTC, the API's one clock).
std::string date_from_today(int days, int years_back) {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  utc.tm_mday += days;
  utc.tm_year -= years_back;
  timegm(&utc);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m-%d", &utc);
  return text;
}

class BirthdayApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = std::make_unique<PostgresServer>();
    database_->query(read_file(source_dir() + "/pipelines/sql/birthday.sql"));
    database_->query(read_file(source_dir() + "/pipelines/sql/birthday.sql"));  // idempotent
    database_->query("GRANT ALL ON hello_users TO etl");
  }
  static void TearDownTestSuite() { database_.reset(); }

  void SetUp() override {
    database_->query("TRUNCATE hello_users");
    port_ = free_port();
    api_ = start_instance(reports_);
    ASSERT_TRUE(eventually([&] { return request("GET", "/readyz").status == 200; }, 30s)) << api_->err();
  }

  /// etl-host running pipelines/birthday-api.json on port_, its report in `reports`.
  std::unique_ptr<BackgroundProcess> start_instance(const TempDir& reports) {
    ProcessOptions options;
    options.set_env = database_->env();
    options.set_env["HTTP_PORT"] = std::to_string(port_);
    options.set_env["REPORT_DIR"] = reports.path().string();
    options.working_dir = source_dir();
    return std::make_unique<BackgroundProcess>(
        std::vector<std::string>{etl_host_binary(), "run", "pipelines/birthday-api.json"}, options);
  }
  void TearDown() override {
    if (api_) {
      api_->signal(SIGTERM);
      api_->wait(20s);
    }
  }

  Reply request(const std::string& method, const std::string& path, const std::string& body = "") {
    return http_request(port_, method, path, body);
  }
  Reply save(const std::string& user, const std::string& date) {
    return request("PUT", "/hello/" + user, json{{"dateOfBirth", date}}.dump());
  }
  std::string message(const std::string& user) {
    const Reply reply = request("GET", "/hello/" + user);
    if (reply.status != 200) return std::to_string(reply.status) + " " + reply.body;
    return json::parse(reply.body).at("message");
  }

  static inline std::unique_ptr<PostgresServer> database_;
  TempDir reports_;
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> api_;
};

TEST_F(BirthdayApi, SaveUpdateAndGreet) {
  EXPECT_EQ(save("ann", date_from_today(0, 30)).status, 204);
  EXPECT_EQ(message("ann"), "Hello, ann! Happy birthday!");
  EXPECT_EQ(save("ann", date_from_today(1, 30)).status, 204);  // an update, not a conflict
  EXPECT_EQ(message("ann"), "Hello, ann! Your birthday is in 1 day(s)");
  EXPECT_EQ(save("Bob", date_from_today(10, 1)).status, 204);
  EXPECT_EQ(message("Bob"), "Hello, Bob! Your birthday is in 10 day(s)");
  EXPECT_EQ(database_->query("SELECT count(*) FROM hello_users").at(0).at(0), "2");
}

TEST_F(BirthdayApi, UnknownUsersInvalidNamesAndDatesAndBadBodies) {
  EXPECT_EQ(request("GET", "/hello/nobody").status, 404);
  const Reply digits = save("ann1", "2000-01-01");
  EXPECT_EQ(digits.status, 400);
  EXPECT_EQ(json::parse(digits.body).at("code"), "validate.regex") << digits.body;
  EXPECT_EQ(request("GET", "/hello/ann1").status, 400);
  EXPECT_EQ(save("ann", "2001-02-29").status, 400);  // not a real date
  EXPECT_EQ(save("ann", "01/02/2000").status, 400);
  // Exactly YYYY-MM-DD, refused by the pipeline's own rule (never the database's 22008 text).
  for (const char* loose : {"1990-5-7", "\t1990-05-17", "990-05-17", "90-05-17", "1990-05-17T00:00:00Z"}) {
    const Reply refused = save("ann", loose);
    EXPECT_EQ(refused.status, 400) << loose;
    if (refused.status == 400) { EXPECT_EQ(json::parse(refused.body).at("code"), "validate.date") << loose << refused.body; }
  }
  const Reply future = save("ann", date_from_today(1, 0));
  EXPECT_EQ(future.status, 400);
  EXPECT_EQ(json::parse(future.body).at("code"), "validate.before") << future.body;
  EXPECT_EQ(save("ann", date_from_today(0, 0)).status, 400);  // today is not before today
  EXPECT_EQ(request("PUT", "/hello/ann", "{\"dateOfBirth\": 5}").status, 400);
  const Reply malformed = request("PUT", "/hello/ann", "{\"dateOfBirth\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(json::parse(malformed.body).at("code"), "http.json") << malformed.body;
  EXPECT_EQ(request("PUT", "/hello/ann", "[1, 2]").status, 400);
  EXPECT_EQ(request("PUT", "/hello/ann").status, 400);  // no body: dateOfBirth is required
  EXPECT_EQ(request("PUT", "/hello/ann", std::string(10 * 1024 * 1024, 'x')).status, 413);
  EXPECT_EQ(request("DELETE", "/hello/ann").status, 405);
  EXPECT_EQ(request("GET", "/elsewhere").status, 404);
  EXPECT_EQ(request("GET", "/healthz").status, 200);
  EXPECT_EQ(database_->query("SELECT count(*) FROM hello_users").at(0).at(0), "0");
}

TEST_F(BirthdayApi, LeapDaysAndTheTurnOfTheYear) {
  // The greeting is computed in SQL from the date of birth and "today": checked for chosen days.
  auto greeting = [](const std::string& dob, const std::string& today) {
    return database_->query("SELECT hello_message('ann', '" + dob + "'::date, '" + today + "'::date)").at(0).at(0);
  };
  EXPECT_EQ(greeting("1990-01-01", "2026-12-31"), "Hello, ann! Your birthday is in 1 day(s)");
  EXPECT_EQ(greeting("1990-12-31", "2026-12-31"), "Hello, ann! Happy birthday!");
  EXPECT_EQ(greeting("1990-12-31", "2027-01-01"), "Hello, ann! Your birthday is in 364 day(s)");
  EXPECT_EQ(greeting("2000-02-29", "2027-02-28"), "Hello, ann! Happy birthday!");  // no 29th in 2027
  EXPECT_EQ(greeting("2000-02-29", "2028-02-28"), "Hello, ann! Your birthday is in 1 day(s)");
  EXPECT_EQ(greeting("2000-02-29", "2028-02-29"), "Hello, ann! Happy birthday!");
  EXPECT_EQ(greeting("2000-03-01", "2028-02-28"), "Hello, ann! Your birthday is in 2 day(s)");
  // And a leap-day birthday through the API.
  EXPECT_EQ(save("leap", "2000-02-29").status, 204);
  EXPECT_EQ(message("leap").rfind("Hello, leap! ", 0), 0u);
}

TEST_F(BirthdayApi, ConcurrentRequestsAreAllAnsweredAndSigtermDrainsThem) {
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < 25; ++i) {
        const std::string name = std::string("user") + static_cast<char>('a' + c) + static_cast<char>('a' + i);
        (save(name, "1990-05-17").status == 204 ? ok : failed)++;
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(ok.load(), 200);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(database_->query("SELECT count(*) FROM hello_users").at(0).at(0), "200");
  api_->signal(SIGTERM);
  EXPECT_EQ(api_->wait(20s), 143) << api_->err();
  const std::string report = read_file(reports_.file("birthday-api.jsonl"));
  EXPECT_NE(report.find("\"summary\""), std::string::npos);
  api_.reset();
}

/// Records with status ok in a JSON Lines report.
int ok_records(const std::string& report) {
  int ok = 0;
  std::istringstream lines(report);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const json entry = json::parse(line);
    if (entry.contains("status") && entry.at("status") == "ok") ++ok;
  }
  return ok;
}

// A rolling restart on one port: a second instance starts on the same port (SO_REUSEPORT), then
// the first is stopped with SIGTERM while two clients send requests without a pause, each on a
// new connection (so that both instances get some). Not one request may fail.
TEST_F(BirthdayApi, RollingRestartOnOnePortFailsNoRequest) {
  if (read_file("/proc/sys/net/ipv4/tcp_migrate_req").rfind('1', 0) != 0) {
    GTEST_SKIP() << "needs net.ipv4.tcp_migrate_req = 1 (tests/support/private-network sets it in a network "
                    "namespace of its own when run as root); without it a closing listener resets the "
                    "connections in its backlog";
  }
  ASSERT_EQ(save("ann", "1990-05-17").status, 204);
  std::atomic<bool> done{false};
  std::atomic<int> answered{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  auto client = [&](int id) {
    for (int i = 0; !done; ++i) {
      const bool put = i % 2 == 0;
      const Reply reply = put ? save("roll" + std::string(1, static_cast<char>('a' + id)) + "x" +
                                         std::string(static_cast<std::size_t>(i % 20 + 1), 'y'),
                                     "1990-05-17")
                              : request("GET", "/hello/ann");
      if (reply.status == (put ? 204 : 200)) {
        ++answered;
      } else {
        std::lock_guard lock(failures_mutex);
        failures.push_back((put ? "PUT " : "GET ") + std::to_string(reply.status) + " " + reply.body);
      }
    }
  };
  std::vector<std::thread> clients;
  for (int id = 0; id < 2; ++id) clients.emplace_back(client, id);
  auto answered_more = [&](int count) {
    const int from = answered;
    return eventually([&] { return answered >= from + count; }, 30s);
  };
  EXPECT_TRUE(answered_more(100));

  TempDir second_reports;
  auto second = start_instance(second_reports);
  EXPECT_TRUE(second->wait_for_err("listening on", 30s)) << second->err();
  EXPECT_TRUE(answered_more(300));  // both instances take connections now

  api_->signal(SIGTERM);
  EXPECT_EQ(api_->wait(30s), 143) << api_->err();
  EXPECT_TRUE(answered_more(300));  // the second instance alone
  done = true;
  for (auto& thread : clients) thread.join();

  {
    std::lock_guard lock(failures_mutex);
    EXPECT_TRUE(failures.empty()) << failures.size() << " failed request(s), the first: " << failures.front();
  }
  // Both instances answered requests, and each reported what it answered.
  const int first_ok = ok_records(read_file(reports_.file("birthday-api.jsonl")));
  second->signal(SIGTERM);
  EXPECT_EQ(second->wait(30s), 143) << second->err();
  const int second_ok = ok_records(read_file(second_reports.file("birthday-api.jsonl")));
  EXPECT_GT(first_ok, 0);
  EXPECT_GT(second_ok, 0);
  EXPECT_EQ(first_ok + second_ok, answered.load() + 1);  // + the first save
  api_.reset();
}

}  // namespace
}  // namespace etl::testing
