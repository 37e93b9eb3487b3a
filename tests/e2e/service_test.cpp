// Services that never end by accident: the three systems' long-running pipelines through the
// real etl-host, against a real PostgreSQL that goes away and comes back, real HTTP clients
// (sockets, curl) that are slow or hostile, and an API that hangs.
//   - the birthday API and the webhook receiver through a 45 s database outage under steady
//     requests: the process stays up, 503 with Retry-After while down, /readyz false, served
//     again within 10 s of the return, every 2xx in the table;
//   - after a restart with no traffic, the next writes are stored (no idle session used blind);
//   - 500 slow and idle connections while a normal client is answered within a second;
//   - HTTP as clients rely on it: HEAD, Allow on 405, malformed framing, Connection: close;
//   - /metrics;
//   - the integrator through a restart while busy and while idle: every customer sent and marked;
//   - SIGTERM with a hanging API: the run ends within the drain, the hung requests reported;
//   - a failed report run's window covered by the next.

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// How long the database is down in the outage tests (the issue's 45 s).
constexpr auto kOutage = 45s;

struct Answer {
  Clock::time_point at;
  int status = 0;
  bool retry_after = false;
  double seconds = 0;
  std::string name;  // the resource written, for 2xx writes
};

/// Requests in a loop on a thread of their own, until stopped, with a client timeout of 5 s (a
/// hang shows as -1), every answer kept.
class SteadyTraffic {
 public:
  SteadyTraffic(std::function<Answer(int)> request) : request_(std::move(request)) {
    thread_ = std::thread([this] {
      for (int i = 0; !stop_ && i < 100000; ++i) {
        Answer answer = request_(i);
        {
          std::lock_guard lock(mutex_);
          answers_.push_back(std::move(answer));
        }
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  ~SteadyTraffic() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Answer> answers() {
    std::lock_guard lock(mutex_);
    return answers_;
  }
  /// Whether an answer of `status` came after `after`.
  bool saw(int status, Clock::time_point after) {
    std::lock_guard lock(mutex_);
    for (const auto& answer : answers_) {
      if (answer.at > after && answer.status == status) return true;
    }
    return false;
  }
  /// The first answer after `after` whose status is 2xx.
  std::optional<Clock::time_point> first_success_after(Clock::time_point after) {
    std::lock_guard lock(mutex_);
    for (const auto& answer : answers_) {
      if (answer.at > after && answer.status >= 200 && answer.status < 300) return answer.at;
    }
    return std::nullopt;
  }

 private:
  std::function<Answer(int)> request_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Answer> answers_;
  std::thread thread_;
};

Answer timed(const std::function<HttpReply()>& send, std::string name = {}) {
  const auto began = Clock::now();
  const HttpReply reply = send();
  Answer answer;
  answer.at = Clock::now();
  answer.status = reply.status;
  answer.retry_after = reply.headers.count("retry-after") != 0;
  answer.seconds = std::chrono::duration<double>(answer.at - began).count();
  answer.name = std::move(name);
  return answer;
}

int occurrences(const std::string& text, const std::string& what) {
  int count = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

/// A raw TCP client, for what an HTTP library would not send.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;
  [[nodiscard]] bool connected() const { return connected_; }
  void send_text(const std::string& text) { [[maybe_unused]] auto sent = ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL); }
  /// What came within `timeout`, until the server closed or `until` arrived.
  std::string receive(std::chrono::milliseconds timeout, const std::string& until = "\r\n\r\n") {
    const auto end = Clock::now() + timeout;
    while (Clock::now() < end && (until.empty() || received_.find(until) == std::string::npos)) {
      pollfd ready{fd_, POLLIN, 0};
      if (poll(&ready, 1, 50) <= 0) continue;
      char buffer[4096];
      const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) {
        closed_ = true;
        break;
      }
      received_.append(buffer, static_cast<std::size_t>(got));
    }
    return received_;
  }
  bool closed_within(std::chrono::milliseconds timeout) {
    receive(timeout, "\x01never");
    return closed_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string received_;
};

// ---- the two HTTP services ----

class ServiceApis : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = std::make_unique<PostgresServer>();
    database_->query("SET client_min_messages = warning;\n" + read_file(source_dir() + "/pipelines/sql/birthday.sql"));
    database_->query("SET client_min_messages = warning;\n" + read_file(source_dir() + "/pipelines/sql/meetperry.sql"));
    database_->query("GRANT ALL ON hello_users TO etl; GRANT USAGE ON SCHEMA meetperry TO etl; "
                     "GRANT ALL ON ALL TABLES IN SCHEMA meetperry TO etl; GRANT ALL ON ALL SEQUENCES IN SCHEMA meetperry TO etl");
  }
  static void TearDownTestSuite() { database_.reset(); }

  void TearDown() override {
    if (service_) {
      service_->signal(SIGTERM);
      service_->wait(30s);
    }
    // A test that left the server down gives the next a server that is up.
    if (!database_->reachable()) database_->start();
  }

  void start(const std::string& pipeline) {
    database_->query("TRUNCATE hello_users; TRUNCATE meetperry.task");
    port_ = free_port();
    ProcessOptions options;
    options.set_env = database_->env();
    options.set_env["HTTP_PORT"] = std::to_string(port_);
    options.set_env["REPORT_DIR"] = reports_.path().string();
    options.working_dir = source_dir();
    service_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{etl_host_binary(), "run", pipeline}, options);
    ASSERT_TRUE(eventually([&] { return http_request(port_, "GET", "/readyz").status == 200; }, 30s)) << service_->err();
  }

  HttpReply put_birthday(const std::string& user, std::chrono::milliseconds timeout = 5s) {
    return http_request(port_, "PUT", "/hello/" + user, R"({"dateOfBirth": "1990-05-17"})", timeout);
  }
  HttpReply post_webhook(const std::string& id, std::chrono::milliseconds timeout = 5s) {
    const json event = {{"event", "created"},
                        {"timestamp", "2026-12-01T10:00:00Z"},
                        {"metadata", {{"userId", "u1"}, {"id", id}, {"content", "task " + id}, {"isCompleted", false}}}};
    return http_request(port_, "POST", "/webhook", event.dump(), timeout);
  }

  /// The outage: steady writes (and reads) while the database is stopped for kOutage, then
  /// started again. `write` makes request i (the name it writes), `stored` counts names in the
  /// table.
  void expect_outage_is_survived(const std::function<Answer(int)>& request, const std::string& count_sql,
                                 int write_status) {
    SteadyTraffic traffic(request);
    std::vector<Answer> readiness;
    std::mutex readiness_mutex;
    std::atomic<bool> probing{true};
    std::thread probe([&] {
      for (int i = 0; probing && i < 100000; ++i) {
        Answer answer = timed([&] { return http_request(port_, "GET", "/readyz", "", 2000ms); });
        {
          std::lock_guard lock(readiness_mutex);
          readiness.push_back(answer);
        }
        std::this_thread::sleep_for(250ms);
      }
    });
    ASSERT_TRUE(eventually([&] { return traffic.saw(write_status, Clock::now() - 1h); }, 10s));

    const auto down = Clock::now();
    database_->stop();
    // Refused at once while down: 503 with Retry-After, and not ready.
    EXPECT_TRUE(eventually([&] { return traffic.saw(503, down); }, 10s)) << service_->err();
    EXPECT_TRUE(eventually(
        [&] {
          std::lock_guard lock(readiness_mutex);
          return !readiness.empty() && readiness.back().status == 503;
        },
        10s));
    // The outage lasts; the service stays (checked every half second).
    for (auto until = down + kOutage; Clock::now() < until;) {
      ASSERT_TRUE(service_->running()) << service_->err();
      std::this_thread::sleep_for(500ms);
    }
    const auto up = Clock::now();
    database_->start();
    // Served again within 10 s of the return, and ready again.
    const auto served = [&] { return traffic.first_success_after(up).has_value(); };
    EXPECT_TRUE(eventually(served, 15s)) << service_->err();
    if (served()) { EXPECT_LT(*traffic.first_success_after(up) - up, 10s); }
    EXPECT_TRUE(eventually(
        [&] {
          std::lock_guard lock(readiness_mutex);
          return !readiness.empty() && readiness.back().status == 200;
        },
        15s));
    const auto back = Clock::now();
    ASSERT_TRUE(eventually([&] { return traffic.saw(write_status, back + 1s); }, 10s));
    traffic.stop();
    probing = false;
    probe.join();
    EXPECT_TRUE(service_->running()) << service_->err();

    // Never a 500, never a hang (a client timeout is -1); every 503 says when to come back, and
    // is answered at once while down (after the first seconds in which rows in flight wait).
    const auto answers = traffic.answers();
    int unavailable = 0;
    std::set<std::string> written;
    for (const auto& answer : answers) {
      EXPECT_NE(answer.status, 500);
      EXPECT_NE(answer.status, -1) << "a request hung (client timeout) at " +
                                          std::to_string(std::chrono::duration<double>(answer.at - down).count()) + " s";
      if (answer.status == 503) {
        ++unavailable;
        EXPECT_TRUE(answer.retry_after);
        if (answer.at > down + 10s && answer.at < up) { EXPECT_LT(answer.seconds, 1.0); }
      }
      if (answer.status == write_status && !answer.name.empty()) written.insert(answer.name);
    }
    EXPECT_GT(unavailable, 100);
    // Every 2xx is in the table.
    const std::string stored = database_->query(count_sql).at(0).at(0);
    EXPECT_EQ(std::stoul(stored), written.size()) << "answered " << written.size() << ", stored " << stored;
    // Said once per change of state, not once per request.
    const std::string log = service_->err();
    EXPECT_EQ(occurrences(log, "service: not ready"), 1) << log.substr(0, 4000);
    EXPECT_EQ(occurrences(log, "service: ready again"), 1) << log.substr(0, 4000);
  }

  static inline std::unique_ptr<PostgresServer> database_;
  TempDir reports_;
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> service_;
};

TEST_F(ServiceApis, TheBirthdayApiOutlivesADatabaseOutageUnderSteadyRequests) {
  start("pipelines/birthday-api.json");
  std::mutex names_mutex;
  expect_outage_is_survived(
      [&](int i) {
        if (i % 2 == 1) {
          Answer answer = timed([&] { return http_request(port_, "GET", "/hello/ann", "", 5000ms); });
          if (answer.status == 404) answer.status = 200;  // a read answered (ann may not exist yet)
          answer.name.clear();
          return answer;
        }
        std::string name = "user";
        for (int n = i; n > 0; n /= 26) name += static_cast<char>('a' + n % 26);
        return timed([&] { return put_birthday(name); }, name);
      },
      "SELECT count(*) FROM hello_users", 204);
}

TEST_F(ServiceApis, TheWebhookReceiverOutlivesADatabaseOutageUnderSteadyRequests) {
  start("pipelines/meetperry-webhook.json");
  expect_outage_is_survived(
      [&](int i) {
        const std::string id = "t" + std::to_string(i);
        return timed([&] { return post_webhook(id); }, id);
      },
      "SELECT count(*) FROM meetperry.task", 200);
}

TEST_F(ServiceApis, AfterARestartWithNoTrafficTheNextWritesAreStored) {
  start("pipelines/meetperry-webhook.json");
  ASSERT_EQ(post_webhook("before").status, 200);
  database_->control("restart -m fast");  // every pooled session is ended while idle
  // A connection that looked at its socket during the restart found the server away and waits
  // its backoff (up to 2 s) to try again, answering 503 meanwhile: that is the outage case
  // (tested elsewhere). Here: once the service says it is ready, no session the server ended is
  // used blind.
  ASSERT_TRUE(eventually([&] { return http_request(port_, "GET", "/readyz").status == 200; }, 30s)) << service_->err();
  // Each of the next writes (more than the sink has connections) is stored: no session the
  // server ended is used blind (which answered 503 "commit outcome unknown" before).
  for (int i = 0; i < 20; ++i) {
    const HttpReply reply = post_webhook("after" + std::to_string(i), 5000ms);
    EXPECT_EQ(reply.status, 200) << i << ": " << reply.body << (i == 0 && reply.status != 200 ? "\n" + service_->err() : "");
    EXPECT_NE(reply.body.find("\"created\""), std::string::npos) << i << ": " << reply.status << " " << reply.body;
  }
  EXPECT_EQ(database_->query("SELECT count(*) FROM meetperry.task").at(0).at(0), "21");
}

TEST_F(ServiceApis, AReadOnlyDatabaseIsWaitedOutNotFatal) {
  // What a failover looks like from a session that stays up (a primary being demoted, or
  // default_transaction_read_only for maintenance): writes refused 25006. A service answers
  // 503 and goes on; writes are stored again once the database takes them.
  start("pipelines/birthday-api.json");
  ASSERT_EQ(put_birthday("before").status, 204);
  struct Writable {
    PostgresServer& database;
    ~Writable() {
      database.query("ALTER SYSTEM RESET default_transaction_read_only");
      database.query("SELECT pg_reload_conf()");
    }
  } writable_again{*database_};
  database_->query("ALTER SYSTEM SET default_transaction_read_only = on");
  database_->query("SELECT pg_reload_conf()");
  // pg_reload_conf() reaches the service's sessions when each next handles its signal: a write
  // may still be stored meanwhile, under a name of its own (letters only), and then expected.
  HttpReply refused;
  std::set<std::string> stored_meanwhile;
  int attempt = 0;
  EXPECT_TRUE(eventually([&] {
    const std::string name = std::string("during") + static_cast<char>('a' + attempt / 26 % 26) + static_cast<char>('a' + attempt % 26);
    ++attempt;
    refused = put_birthday(name);
    if (refused.status == 204) stored_meanwhile.insert(name);
    return refused.status == 503;
  }, 10s)) << refused.status << " " << refused.body;
  EXPECT_EQ(refused.body.find("read-only transaction"), std::string::npos) << "the database's own text reached the client: " << refused.body;
  EXPECT_EQ(http_request(port_, "GET", "/hello/before").status, 200);
  ASSERT_TRUE(service_->running()) << service_->err();
  database_->query("ALTER SYSTEM RESET default_transaction_read_only");
  database_->query("SELECT pg_reload_conf()");
  EXPECT_TRUE(eventually([&] { return put_birthday("after").status == 204; }, 10s)) << service_->err();
  EXPECT_TRUE(service_->running()) << service_->err();
  std::string expected = "after,before";
  for (const auto& name : stored_meanwhile) expected += "," + name;  // names sort after "before"
  EXPECT_EQ(database_->query("SELECT string_agg(username, ',' ORDER BY username) FROM hello_users").at(0).at(0), expected);
}

TEST_F(ServiceApis, FiveHundredSlowAndIdleClientsDoNotHoldUpANormalOne) {
  start("pipelines/birthday-api.json");
  ASSERT_EQ(put_birthday("ann").status, 204);
  std::vector<std::unique_ptr<RawClient>> slow;
  for (int i = 0; i < 500; ++i) {
    slow.push_back(std::make_unique<RawClient>(port_));
    ASSERT_TRUE(slow.back()->connected()) << i;
    if (i % 2 == 0) slow.back()->send_text("PUT /hello/slow HTTP/1.1\r\nHost: x\r\nX-Trickle: ");
  }
  for (int round = 0; round < 10; ++round) {
    const auto began = Clock::now();
    const HttpReply reply = http_request(port_, "GET", "/hello/ann", "", 2000ms);
    EXPECT_EQ(reply.status, 200) << reply.body;
    EXPECT_LT(Clock::now() - began, 1s) << "round " << round;
    for (std::size_t i = 0; i < slow.size(); i += 2) slow[i]->send_text("x");  // still trickling
  }
  // A header line every few seconds does not keep a connection forever: header_timeout (10 s).
  const auto began = Clock::now();
  EXPECT_TRUE(slow[0]->closed_within(15s));
  EXPECT_LT(Clock::now() - began, 12s);
  EXPECT_NE(slow[0]->receive(1ms, "").find("408 Request Timeout"), std::string::npos);
}

TEST_F(ServiceApis, HttpAsClientsAndLoadBalancersRelyOnIt) {
  start("pipelines/birthday-api.json");
  ASSERT_EQ(put_birthday("ann").status, 204);
  // HEAD where GET is routed: the GET's headers, no body.
  const auto head = run_process({"/usr/bin/curl", "-sS", "-I", "http://127.0.0.1:" + std::to_string(port_) + "/hello/ann"});
  EXPECT_EQ(head.exit_code, 0) << head.err;
  EXPECT_NE(head.out.find("HTTP/1.1 200 OK"), std::string::npos) << head.out;
  EXPECT_NE(head.out.find("Content-Length: "), std::string::npos) << head.out;
  // 405 says what is allowed.
  const auto refused = run_process({"/usr/bin/curl", "-sS", "-i", "-X", "DELETE",
                                    "http://127.0.0.1:" + std::to_string(port_) + "/hello/ann"});
  EXPECT_NE(refused.out.find("HTTP/1.1 405"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("Allow: PUT, GET, HEAD"), std::string::npos) << refused.out;
  // What curl would not send, from a raw socket.
  for (const auto& [text, status] : std::vector<std::pair<std::string, std::string>>{
           {"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400"},
           {"PUT /hello/bob HTTP/1.1\r\nHost: x\r\nContent-Length: 31\r\nContent-Length: 30\r\n\r\n", "400"},
           {"GET /hello/ann HTTP/1.1\r\n\r\n", "400"},
       }) {
    RawClient client(port_);
    client.send_text(text);
    const std::string answer = client.receive(3000ms);
    EXPECT_EQ(answer.rfind("HTTP/1.1 " + status, 0), 0u) << text << "\n-> " << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
  }
  // Connection: close is honoured.
  RawClient closing(port_);
  closing.send_text("GET /hello/ann HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string answer = closing.receive(3000ms, "");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK", 0), 0u) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(closing.closed_within(3000ms));
  EXPECT_EQ(database_->query("SELECT count(*) FROM hello_users").at(0).at(0), "1");
}

TEST_F(ServiceApis, MetricsAreServedInPrometheusTextFormat) {
  start("pipelines/birthday-api.json");
  ASSERT_EQ(put_birthday("ann").status, 204);
  ASSERT_EQ(http_request(port_, "GET", "/hello/ann").status, 200);
  ASSERT_EQ(http_request(port_, "GET", "/hello/nobody").status, 404);
  HttpReply metrics;
  ASSERT_TRUE(eventually(
      [&] {
        metrics = http_request(port_, "GET", "/metrics");
        return metrics.body.find("etl_records_total{pipeline=\"birthday-api\",status=\"ok\"} 2") != std::string::npos;
      },
      10s))
      << metrics.body;
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.headers["content-type"].find("text/plain"), std::string::npos);
  for (const char* expected :
       {"etl_http_requests_total{route=\"save\",method=\"PUT\",status=\"204\"} 1",
        "etl_http_requests_total{route=\"greet\",method=\"GET\",status=\"200\"} 1",
        "etl_http_requests_total{route=\"greet\",method=\"GET\",status=\"404\"} 1",
        "etl_http_request_duration_seconds_count{route=\"save\"} 1", "etl_http_request_duration_seconds_bucket{route=\"greet\",le=\"+Inf\"} 2",
        "etl_sink_connections_up{pipeline=\"birthday-api\",plugin=\"postgres-row-by-row\"} 4", "etl_ready{pipeline=\"birthday-api\"} 1",
        "# TYPE etl_http_request_duration_seconds histogram", "etl_http_connections_open "}) {
    EXPECT_NE(metrics.body.find(expected), std::string::npos) << expected << "\n" << metrics.body;
  }
}

// ---- the integrator ----

class ServiceIntegrator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = std::make_unique<PostgresServer>();
    database_->query("SET client_min_messages = warning;\n" + read_file(source_dir() + "/pipelines/sql/goquiz.sql"));
    database_->query("GRANT ALL ON customers TO etl");
  }
  static void TearDownTestSuite() { database_.reset(); }
  void SetUp() override {
    database_->query("TRUNCATE customers");
    write_file(work_.file("ledger.jsonl"), "");
  }
  void TearDown() override {
    if (integrator_) {
      integrator_->signal(SIGTERM);
      integrator_->wait(30s);
    }
    if (!database_->reachable()) database_->start();
  }

  std::unique_ptr<BackgroundProcess> start_api(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {binary_dir() + "/bin/customer-api", "--port", std::to_string(api_port_), "--ledger",
                                     work_.file("ledger.jsonl")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto api = std::make_unique<BackgroundProcess>(argv);
    EXPECT_EQ(api->read_line(10s), std::to_string(api_port_)) << api->err();
    return api;
  }
  void start_integrator(std::map<std::string, std::string> extra = {}) {
    ProcessOptions options;
    options.set_env = database_->env();
    options.set_env["REPORT_DIR"] = reports_.path().string();
    options.set_env["API_URL"] = "http://127.0.0.1:" + std::to_string(api_port_) + "/customers";
    options.set_env["API_RETRY_MAX_DELAY"] = "1";
    for (auto& [key, value] : extra) options.set_env[key] = value;
    options.working_dir = source_dir();
    integrator_ = std::make_unique<BackgroundProcess>(
        std::vector<std::string>{etl_host_binary(), "run", "pipelines/goquiz-integrate.json"}, options);
    ASSERT_TRUE(integrator_->wait_for_err("running pipelines/goquiz-integrate.json", 30s)) << integrator_->err();
  }
  void insert_customers(int from, int to) {
    database_->query("INSERT INTO customers (id, name, email, phone) SELECT 'c' || n, 'Customer ' || n, 'c' || n || "
                     "'@example.com', '+1-555-' || n FROM generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") n");
  }
  std::string unsent() { return database_->query("SELECT count(*) FROM customers WHERE sent_at IS NULL").at(0).at(0); }
  /// Customers the API accepted, by id (replays apart).
  std::map<std::string, int> received() {
    std::map<std::string, int> by_id;
    for (const auto& line : lines_of(read_file(work_.file("ledger.jsonl")))) {
      if (line.empty()) continue;
      const json entry = json::parse(line, nullptr, false);
      if (!entry.is_object() || entry.value("replay", false) || entry.value("hung", false)) continue;
      ++by_id[entry.at("customer").at("id").get<std::string>()];
    }
    return by_id;
  }
  json api_stats() {
    const HttpReply reply = http_request(api_port_, "GET", "/stats");
    return reply.status == 200 ? json::parse(reply.body) : json{{"accepted", -1}, {"hung", -1}};
  }

  static inline std::unique_ptr<PostgresServer> database_;
  TempDir work_;
  TempDir reports_;
  int api_port_ = free_port();
  std::unique_ptr<BackgroundProcess> integrator_;
};

TEST_F(ServiceIntegrator, ARestartWhileBusySendsAndMarksEveryCustomer) {
  constexpr int kCustomers = 20000;
  auto api = start_api();
  insert_customers(1, kCustomers);
  start_integrator();
  ASSERT_TRUE(eventually([&] { return api_stats().at("accepted").get<int>() >= 2000; }, 60s)) << integrator_->err();
  database_->control("restart -m fast");
  ASSERT_TRUE(eventually([&] { return unsent() == "0"; }, 180s)) << unsent() << " unsent\n" << integrator_->err();
  EXPECT_TRUE(integrator_->running()) << integrator_->err();
  const auto by_id = received();
  EXPECT_EQ(by_id.size(), static_cast<std::size_t>(kCustomers));
  for (const auto& [id, times] : by_id) EXPECT_EQ(times, 1) << id;
  EXPECT_NE(integrator_->err().find("reconnecting"), std::string::npos) << integrator_->err();
  integrator_->signal(SIGTERM);
  EXPECT_EQ(integrator_->wait(30s), 143) << integrator_->err();
  integrator_.reset();
}

TEST_F(ServiceIntegrator, ARestartWhileIdleDoesNotEndItAndLaterRowsAreSent) {
  auto api = start_api();
  start_integrator();
  insert_customers(1, 10);
  ASSERT_TRUE(eventually([&] { return unsent() == "0"; }, 30s)) << integrator_->err();
  database_->control("restart -m fast");
  // Idle through the restart; rows stored afterwards are sent (LISTEN issued again, or the poll).
  insert_customers(11, 30);
  ASSERT_TRUE(eventually([&] { return unsent() == "0"; }, 60s)) << unsent() << "\n" << integrator_->err();
  EXPECT_TRUE(integrator_->running()) << integrator_->err();
  EXPECT_EQ(received().size(), 30u);
  EXPECT_NE(integrator_->err().find("again; LISTEN and the query run again"), std::string::npos) << integrator_->err();
  // The down time was said once, not once per poll.
  EXPECT_LE(occurrences(integrator_->err(), "; reconnecting ("), 2) << integrator_->err();
}

TEST_F(ServiceIntegrator, SigtermWithAHangingApiEndsWithinTheDrainAndReportsTheHungRequests) {
  auto api = start_api({"--hang-after", "0"});
  insert_customers(1, 200);
  start_integrator();
  ASSERT_TRUE(eventually([&] { return api_stats().at("hung").get<int>() >= 4; }, 30s)) << integrator_->err();
  const int hung = api_stats().at("hung").get<int>();
  const auto signalled = Clock::now();
  integrator_->signal(SIGTERM);
  EXPECT_EQ(integrator_->wait(30s), 143) << integrator_->err();
  const auto took = Clock::now() - signalled;
  EXPECT_LT(took, 10s + 2s) << integrator_->err();  // drain_timeout (10 s) + 2 s
  // Nothing more was sent after the signal, and the requests the API had are failed saying so.
  EXPECT_EQ(api_stats().at("hung").get<int>(), hung);
  int stopped_before_answer = 0, not_sent = 0;
  for (const auto& line : lines_of(read_file(reports_.file("goquiz-integrate.jsonl")))) {
    const json entry = json::parse(line, nullptr, false);
    if (!entry.is_object() || !entry.contains("status")) continue;
    EXPECT_NE(entry.at("status"), "ok");
    const std::string error = entry.value("error", "");
    stopped_before_answer += error.find("the run was stopped before the API answered") != std::string::npos;
    not_sent += error.find("not sent: the run was stopped") != std::string::npos;
  }
  EXPECT_EQ(stopped_before_answer, hung);
  EXPECT_GT(not_sent + stopped_before_answer, 0);
  // None is marked sent: the next start sends them again (with the same Idempotency-Key).
  EXPECT_EQ(unsent(), "200");
  integrator_.reset();
}

// ---- the reports ----

TEST(ServiceReports, AFailedRunsWindowIsCoveredByTheNext) {
  PostgresServer database;
  database.query("SET client_min_messages = warning;\n" + read_file(source_dir() + "/pipelines/sql/meetperry.sql"));
  database.query("GRANT USAGE ON SCHEMA meetperry TO etl; GRANT ALL ON ALL TABLES IN SCHEMA meetperry TO etl");
  database.query("INSERT INTO meetperry.task (external_id, user_id, content, created_date) VALUES ('t1', 'ann', 'x', now())");
  TempDir reports;
  ProcessOptions options;
  options.set_env = database.env();
  options.set_env["REPORT_DIR"] = reports.path().string();
  options.working_dir = source_dir();
  BackgroundProcess schedule({etl_host_binary(), "schedule", "pipelines/meetperry-reports.json", "--every", "3s", "--max-runs",
                              "3", "--set", "source.config.retry.attempts=2"},
                             options);
  ASSERT_TRUE(schedule.wait_for_err("schedule: next run at", 30s)) << schedule.err();  // run 1 done
  database.stop();
  ASSERT_TRUE(schedule.wait_for_err("the next run covers its window from", 60s)) << schedule.err();  // run 2 failed
  database.start();
  ASSERT_EQ(schedule.wait(120s), 0) << schedule.err();
  std::vector<std::pair<std::string, std::string>> windows;
  const std::regex line(R"(run (\d+) starts \(window (\S+) to (\S+)\))");
  const std::string log = schedule.err();
  for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) windows.emplace_back((*it)[2], (*it)[3]);
  ASSERT_EQ(windows.size(), 3u) << log;
  EXPECT_EQ(windows[1].first, windows[0].second);
  EXPECT_EQ(windows[2].first, windows[1].first);  // run 3 starts where the last success (run 1) ended
  // Its report exists: ann's task is in a report of every window she had a task in.
  auto stamp = [](std::string text) {
    text.erase(std::remove(text.begin(), text.end(), '-'), text.end());
    text.erase(std::remove(text.begin(), text.end(), ':'), text.end());
    return text;
  };
  EXPECT_TRUE(std::filesystem::exists(reports.file("task_report_ann_" + stamp(windows[2].first) + "_" +
                                                   stamp(windows[2].second) + ".json")))
      << log;
}

}  // namespace
}  // namespace etl::testing
