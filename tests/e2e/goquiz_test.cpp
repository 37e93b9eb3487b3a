// The goquiz CSV loader and API integrator (pipelines/goquiz-load.json, goquiz-integrate.json):
// the real etl-host with csv-file, validate, postgres, postgres-query (follow mode, LISTEN) and
// http-post, against a real PostgreSQL and a real HTTP API (tools/customer-api) that is down at
// first, then killed and restarted mid-stream, while the loader and the integrator run at once.

#include <gtest/gtest.h>

#include <signal.h>

#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string customer_api_binary() { return binary_dir() + "/bin/customer-api"; }

/// A CSV of `rows` customers, one in a hundred broken in one of five ways; `good` gets the IDs
/// that must reach the API, `broken` the line number of each broken row and its code.
std::string customers_csv(int rows, std::set<std::string>& good, std::map<int, std::string>& broken) {
  std::ostringstream csv;
  csv << "id,name,email,phone\n";
  for (int i = 1; i <= rows; ++i) {
    const int line = i + 1;
    const std::string id = "c" + std::to_string(i);
    if (i % 100 != 50) {
      csv << id << ",Customer " << i << "," << id << "@example.com,+1-555-" << i << "\n";
      good.insert(id);
      continue;
    }
    switch ((i / 100) % 5) {
      case 0: csv << id << ",Customer " << i << "," << id << "@example.com\n"; broken[line] = "csv.field_count"; break;
      case 1: csv << id << ",Cust\xff" << "omer," << id << "@example.com,1\n"; broken[line] = "invalid_utf8"; break;
      case 2: csv << id << ",Customer " << i << ",not-an-email,1\n"; broken[line] = "validate.regex"; break;
      case 3: csv << "c1,Customer again,c1@example.com,1\n"; broken[line] = "23505"; break;  // a duplicate ID
      case 4: csv << id << ",Cus\"tomer," << id << "@example.com,1\n"; broken[line] = "csv.quote"; break;
    }
  }
  return csv.str();
}

class Goquiz : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = std::make_unique<PostgresServer>();
    const std::string tables = "SET client_min_messages = warning;\n" + read_file(source_dir() + "/pipelines/sql/goquiz.sql");
    for (int i = 0; i < 2; ++i) database_->query(tables);  // idempotent
    database_->query("GRANT ALL ON customers TO etl");
  }
  static void TearDownTestSuite() { database_.reset(); }

  ProcessOptions environment() {
    ProcessOptions options;
    options.set_env = database_->env();
    options.set_env["REPORT_DIR"] = reports_.path().string();
    options.set_env["CSV_PATH"] = work_.file("customers.csv");
    options.set_env["API_URL"] = "http://127.0.0.1:" + std::to_string(api_port_) + "/customers";
    options.set_env["API_RETRY_MAX_DELAY"] = "1";
    options.working_dir = source_dir();
    return options;
  }
  std::unique_ptr<BackgroundProcess> start_api(const std::string& unavailable_seconds) {
    auto api = std::make_unique<BackgroundProcess>(std::vector<std::string>{
        customer_api_binary(), "--port", std::to_string(api_port_), "--ledger", work_.file("ledger.jsonl"),
        "--unavailable", unavailable_seconds});
    EXPECT_EQ(api->read_line(10s), std::to_string(api_port_)) << api->err();
    return api;
  }
  /// Customers the API stored, by ID, from its ledger file (`replays`: requests it had
  /// stored before, by their Idempotency-Key).
  std::map<std::string, int> received_by_id(int* replays = nullptr) {
    std::map<std::string, int> received;
    // The API appends to the file while we read it: a last line without its newline is still
    // being written, and is read next time.
    std::string text = read_file(work_.file("ledger.jsonl"));
    const std::size_t last_newline = text.rfind('\n');
    text.erase(last_newline == std::string::npos ? 0 : last_newline + 1);
    for (const auto& line : lines_of(text)) {
      if (line.empty()) continue;
      const json entry = json::parse(line);
      if (entry.value("replay", false)) {
        if (replays != nullptr) ++*replays;
        continue;
      }
      ++received[entry.at("customer").at("id").get<std::string>()];
    }
    return received;
  }
  json api_stats() {
    const HttpReply reply = http_request(api_port_, "GET", "/stats");
    return reply.status == 200 ? json::parse(reply.body) : json{{"accepted", -1}};
  }

  static inline std::unique_ptr<PostgresServer> database_;
  TempDir work_;
  TempDir reports_;
  int api_port_ = free_port();
};

TEST_F(Goquiz, EveryGoodRowReachesTheApiExactlyOnceThroughAnOutageAndARestart) {
  constexpr int kRows = 6000;
  std::set<std::string> good;
  std::map<int, std::string> broken;
  write_file(work_.file("customers.csv"), customers_csv(kRows, good, broken));
  write_file(work_.file("ledger.jsonl"), "");

  // The API is down (503, Retry-After) for its first second; the integrator waits for rows
  // (LISTEN) before the loader has stored any; then both run at once.
  auto api = start_api("1");
  BackgroundProcess integrator({etl_host_binary(), "run", "pipelines/goquiz-integrate.json"}, environment());
  ASSERT_TRUE(integrator.wait_for_err("running pipelines/goquiz-integrate.json", 30s)) << integrator.err();
  BackgroundProcess loader({etl_host_binary(), "run", "pipelines/goquiz-load.json"}, environment());

  // Killed mid-stream (SIGKILL: no goodbye), and started again on the same port and ledger.
  ASSERT_TRUE(eventually([&] { return api_stats().at("accepted").get<int>() >= 1000; }, 60s))
      << integrator.err() << api->err();
  api->signal(SIGKILL);
  api->wait(10s);
  EXPECT_LT(received_by_id().size(), good.size()) << "the API was killed after the stream had ended";
  api = start_api("0");

  EXPECT_EQ(loader.wait(120s), 0) << loader.err();
  ASSERT_TRUE(eventually([&] { return received_by_id().size() >= good.size(); }, 120s))
      << received_by_id().size() << " of " << good.size() << "\n" << integrator.err();
  // Rows marked sent only on success; give the last acknowledgements their moment.
  ASSERT_TRUE(eventually([&] {
    return database_->query("SELECT count(*) FROM customers WHERE sent_at IS NULL").at(0).at(0) == "0";
  }, 30s));
  integrator.signal(SIGTERM);
  EXPECT_EQ(integrator.wait(30s), 143) << integrator.err();
  EXPECT_NE(integrator.err().find("trying again"), std::string::npos) << "the outage was seen";

  // Every good row arrived exactly once, and nothing else did. A request is sent again only
  // when its answer was lost: those in flight when the API was killed (concurrency: 4).
  int replays = 0;
  const auto received = received_by_id(&replays);
  EXPECT_LE(replays, 4);
  EXPECT_EQ(received.size(), good.size());
  for (const auto& [id, times] : received) {
    EXPECT_EQ(times, 1) << id;
    EXPECT_TRUE(good.count(id)) << id << " is not a good row";
  }
  EXPECT_EQ(database_->query("SELECT count(*) FROM customers").at(0).at(0), std::to_string(good.size()));
  EXPECT_EQ(database_->query("SELECT count(*) FROM customers WHERE send_error IS NOT NULL").at(0).at(0), "0");

  // Each broken row is reported with its line and reason; the good ones are ok.
  std::map<int, std::string> reported;
  int ok = 0;
  for (const auto& line : lines_of(read_file(reports_.file("goquiz-load.jsonl")))) {
    const json entry = json::parse(line);
    if (!entry.contains("status")) continue;
    if (entry.at("status") == "ok") {
      ++ok;
      continue;
    }
    const std::string origin = entry.at("origin");
    reported[std::stoi(origin.substr(origin.rfind(':') + 1))] = entry.at("code").get<std::string>();
  }
  EXPECT_EQ(ok, static_cast<int>(good.size()));
  EXPECT_EQ(reported, broken);
  EXPECT_EQ(lines_of(read_file(reports_.file("goquiz-load-rejected.csv"))).size(), broken.size() + 1);
}

}  // namespace
}  // namespace etl::testing
