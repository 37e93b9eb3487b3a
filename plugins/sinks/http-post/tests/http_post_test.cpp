// http-post with the real etl-host and a real HTTP API on a socket (Poco's HTTP server in this
// test process): every good record arrives once, 4xx answers are rejected with the status and
// body, an API answering 503 is waited for, one that stays down ends in failed records within
// max_outage, one key's requests keep their order, and a secret header is never shown.

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

/// The API: stores each body by its "id"; answers 503 while `unavailable` > 0 (counting down),
/// 422 for a name "reject", and 201 with {"stored": id} otherwise.
struct Api {
  std::mutex mutex;
  std::map<std::string, std::vector<json>> bodies_by_id;
  std::vector<std::string> idempotency_keys;
  std::vector<std::string> authorizations;
  std::atomic<int> unavailable{0};
  std::atomic<int> requests{0};
};

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(Api& api) : api_(api) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
    std::string body;
    Poco::StreamCopier::copyToString(request.stream(), body);
    ++api_.requests;
    if (api_.unavailable.load() > 0) {
      --api_.unavailable;
      response.setStatus(Poco::Net::HTTPResponse::HTTP_SERVICE_UNAVAILABLE);
      response.set("Retry-After", "0");
      response.send() << "down for maintenance";
      return;
    }
    const json document = json::parse(body, nullptr, false);
    if (document.is_discarded() || !document.contains("id")) {
      response.setStatus(Poco::Net::HTTPResponse::HTTP_BAD_REQUEST);
      response.send() << "{\"error\": \"no id\"}";
      return;
    }
    if (document.value("name", "") == "reject") {
      response.setStatus(Poco::Net::HTTPResponse::HTTP_UNPROCESSABLE_ENTITY);
      response.send() << "{\"error\": \"name refused\"}";
      return;
    }
    {
      std::lock_guard lock(api_.mutex);
      api_.bodies_by_id[document.at("id").dump()].push_back(document);
      api_.idempotency_keys.push_back(request.get("Idempotency-Key", ""));
      api_.authorizations.push_back(request.get("Authorization", ""));
    }
    response.setStatus(Poco::Net::HTTPResponse::HTTP_CREATED);
    response.setContentType("application/json");
    response.send() << json{{"stored", document.at("id")}}.dump();
  }

 private:
  Api& api_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(Api& api) : api_(api) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override { return new Handler(api_); }

 private:
  Api& api_;
};

class HttpPost : public ::testing::Test {
 protected:
  void SetUp() override {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port_ = socket.address().port();
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(16);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(api_), socket, params);
    server_->start();
  }
  void TearDown() override {
    if (server_) server_->stopAll(true);
  }

  std::string pipeline(const std::string& csv, json sink) {
    write_file(dir_.file("in.csv"), csv);
    json config = {{"url", "http://127.0.0.1:" + std::to_string(port_) + "/customers"}};
    config.update(sink);
    json pipeline = {{"source", {{"plugin", "csv-file"}, {"config", {{"path", dir_.file("in.csv")}, {"types", {{"id", "integer"}}}}}}},
                     {"sink", {{"plugin", "http-post"}, {"config", config}}},
                     {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file("report.json")}}}}}},
                     {"settings", {{"progress_interval", 0}}}};
    write_file(dir_.file("p.json"), pipeline.dump());
    return dir_.file("p.json");
  }
  json report() const { return json::parse(read_file(dir_.file("report.json"))); }

  static std::string customers(int count, const std::set<int>& rejected = {}) {
    std::string csv = "id,name,email,phone\n";
    for (int id = 1; id <= count; ++id) {
      csv += std::to_string(id) + "," + (rejected.contains(id) ? std::string("reject") : "Name " + std::to_string(id)) +
             ",u" + std::to_string(id) + "@example.com,555-" + std::to_string(1000 + id) + "\n";
    }
    return csv;
  }

  Api api_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  int port_ = 0;
  TempDir dir_;
};

TEST_F(HttpPost, EveryGoodRecordArrivesOnceThroughAnOutageAndRejectionsCarryTheAnswer) {
  api_.unavailable = 40;  // the first 40 requests get 503
  const auto run = run_process({etl_host_binary(), "run",
                                pipeline(customers(300, {17, 230}),
                                         {{"idempotency_key", "customer-{id}"}, {"initial_delay", 0.05}, {"max_delay", 0.2},
                                          {"headers", {{"Authorization", "Bearer s3cr3t-t0ken"}}}})});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::lock_guard lock(api_.mutex);
  ASSERT_EQ(api_.bodies_by_id.size(), 298u);
  for (const auto& [id, bodies] : api_.bodies_by_id) EXPECT_EQ(bodies.size(), 1u) << "id " << id << " arrived twice";
  EXPECT_EQ(api_.bodies_by_id.at("5").front(),
            json({{"id", 5}, {"name", "Name 5"}, {"email", "u5@example.com"}, {"phone", "555-1005"}}));
  EXPECT_EQ(std::count(api_.idempotency_keys.begin(), api_.idempotency_keys.end(), "customer-5"), 1);
  EXPECT_EQ(api_.authorizations.front(), "Bearer s3cr3t-t0ken");
  const json r = report();
  EXPECT_EQ(r.at("summary").at("ok"), 298);
  EXPECT_EQ(r.at("summary").at("rejected"), 2);
  for (const auto& record : r.at("records")) {
    if (record.at("record").at("id") == 17) {
      EXPECT_EQ(record.at("status"), "rejected");
      EXPECT_EQ(record.at("code"), "http_422");
      EXPECT_EQ(record.at("detail").at("body"), json({{"error", "name refused"}}));
    } else if (record.at("record").at("id") == 5) {
      EXPECT_EQ(record.at("detail").at("status"), 201);
      EXPECT_EQ(record.at("detail").at("body"), json({{"stored", 5}}));
    }
  }
  EXPECT_NE(run.err.find("503"), std::string::npos) << run.err;  // the outage was seen and said
  EXPECT_EQ(run.err.find("s3cr3t"), std::string::npos) << run.err;
  EXPECT_EQ(read_file(dir_.file("report.json")).find("s3cr3t"), std::string::npos);
}

TEST_F(HttpPost, AnApiThatStaysDownFailsTheRecordsAfterMaxOutage) {
  api_.unavailable = 1000000;
  const auto started = std::chrono::steady_clock::now();
  const auto run = run_process({etl_host_binary(), "run",
                                pipeline(customers(5), {{"max_outage", 1.5}, {"initial_delay", 0.1}, {"concurrency", 5}})});
  EXPECT_EQ(run.exit_code, 6) << run.err;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(15));
  const json r = report();
  EXPECT_EQ(r.at("summary").at("failed"), 5);
  EXPECT_NE(r.at("records").at(0).at("error").get<std::string>().find("(max_outage), last: 503"), std::string::npos)
      << r.at("records").at(0);
}

TEST_F(HttpPost, AConnectionRefusedIsAnOutageToo) {
  server_->stopAll(true);
  server_.reset();
  const auto run = run_process({etl_host_binary(), "run", pipeline(customers(2), {{"max_outage", 1}, {"initial_delay", 0.1}})});
  EXPECT_EQ(run.exit_code, 6) << run.err;
  EXPECT_EQ(report().at("summary").at("failed"), 2);
  EXPECT_NE(report().at("records").at(0).at("error").get<std::string>().find("refused"), std::string::npos)
      << report().at("records").at(0);
}

TEST_F(HttpPost, OneKeysRequestsKeepTheirOrder) {
  std::string csv = "id,name,email,phone\n";
  for (int version = 1; version <= 30; ++version) {
    for (int id = 1; id <= 5; ++id) csv += std::to_string(id) + ",v" + std::to_string(version) + ",x,y\n";
  }
  const auto run = run_process({etl_host_binary(), "run", pipeline(csv, {{"order_key", "{id}"}, {"concurrency", 8}})});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::lock_guard lock(api_.mutex);
  for (const auto& [id, bodies] : api_.bodies_by_id) {
    ASSERT_EQ(bodies.size(), 30u);
    for (int version = 1; version <= 30; ++version) EXPECT_EQ(bodies[version - 1].at("name"), "v" + std::to_string(version));
  }
}

TEST_F(HttpPost, BadConfigsAreRefusedNamingTheKey) {
  const auto run = run_process({etl_host_binary(), "validate", pipeline(customers(1), {{"url", "ftp://x"}})});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.err.find("/sink/config/url"), std::string::npos) << run.err;
  const auto unclosed = run_process({etl_host_binary(), "run", pipeline(customers(1), {{"idempotency_key", "{id"}})});
  EXPECT_EQ(unclosed.exit_code, 3);
  EXPECT_NE(unclosed.err.find("/sink/config/idempotency_key"), std::string::npos) << unclosed.err;
}

}  // namespace
}  // namespace etl::testing
