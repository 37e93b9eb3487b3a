// HTTPS end to end, both ends real: etl-host running http-post (trusting a CA file) sends to
// etl-host running http-server (serving a certificate), over a TLS socket on loopback.

#include <gtest/gtest.h>

#include <signal.h>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

/// The records of a JSON Lines report, without its summary line.
std::vector<json> records_of(const std::string& report) {
  std::vector<json> records;
  for (const auto& line : lines_of(report)) {
    if (line.empty()) continue;
    json entry = json::parse(line);
    if (!entry.contains("summary")) records.push_back(std::move(entry));
  }
  return records;
}

class Https : public ::testing::Test {
 protected:
  void SetUp() override {
    certificate_ = dir_.file("server.crt");
    const auto made = run_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                   "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                   "-keyout", dir_.file("server.key"), "-out", certificate_});
    ASSERT_EQ(made.exit_code, 0) << made.err;
    port_ = free_port();
    write_file(dir_.file("server.json"),
               json{{"source",
                     {{"plugin", "http-server"},
                      {"config",
                       {{"host", "127.0.0.1"},
                        {"port", port_},
                        {"tls_cert_file", certificate_},
                        {"tls_key_file", dir_.file("server.key")},
                        {"routes", {{{"name", "items"}, {"method", "POST"}, {"path", "/items"}, {"ok_status", 201}}}}}}}},
                    {"sink", {{"plugin", "null"}}},
                    {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file("server.jsonl")}, {"format", "lines"}}}}}}}
                   .dump());
    server_ = std::make_unique<BackgroundProcess>(std::vector<std::string>{etl_host_binary(), "run", dir_.file("server.json")});
    ASSERT_TRUE(server_->wait_for_err("listening on https://", 30s)) << server_->err();
    write_file(dir_.file("lines.txt"), "first\nsecond\nthird\n");
  }
  void TearDown() override {
    if (server_) {
      server_->signal(SIGTERM);
      server_->wait(30s);
    }
  }

  /// Runs http-post over the lines with `extra` in its config; the report's records.
  ProcessResult send(const json& extra, const std::string& report) {
    json sink = {{"url", "https://127.0.0.1:" + std::to_string(port_) + "/items"},
                 {"headers", {{"Authorization", "Bearer tls-test-secret-token"}}},
                 {"max_outage", 1},
                 {"initial_delay", 0.2}};
    sink.update(extra);
    write_file(dir_.file("client.json"),
               json{{"source", {{"plugin", "file-lines"}, {"config", {{"path", dir_.file("lines.txt")}}}}},
                    {"sink", {{"plugin", "http-post"}, {"config", sink}}},
                    {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file(report)}, {"format", "lines"}}}}}}}
                   .dump());
    return run_process({etl_host_binary(), "run", dir_.file("client.json")});
  }

  TempDir dir_;
  std::string certificate_;
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> server_;
};

TEST_F(Https, HttpPostReachesHttpServerOverTlsWithTheCaFile) {
  const auto client = send({{"tls_ca_file", certificate_}}, "client.jsonl");
  ASSERT_EQ(client.exit_code, 0) << client.err;
  const auto sent = records_of(read_file(dir_.file("client.jsonl")));
  ASSERT_EQ(sent.size(), 3u);
  for (const auto& record : sent) EXPECT_EQ(record.at("status"), "ok") << record.dump();
  // The server got each line as a record of its own, over TLS.
  server_->signal(SIGTERM);
  EXPECT_EQ(server_->wait(30s), 143) << server_->err();
  server_.reset();
  std::vector<std::string> received;
  for (const auto& record : records_of(read_file(dir_.file("server.jsonl")))) {
    EXPECT_EQ(record.at("status"), "ok") << record.dump();
    received.push_back(record.at("record").at("line"));
  }
  std::sort(received.begin(), received.end());
  EXPECT_EQ(received, (std::vector<std::string>{"first", "second", "third"}));
  // The header's value is a secret: in neither the log nor the report.
  EXPECT_EQ(client.err.find("tls-test-secret-token"), std::string::npos);
  EXPECT_EQ(read_file(dir_.file("client.jsonl")).find("tls-test-secret-token"), std::string::npos);
}

TEST_F(Https, AnUntrustedCertificateFailsEveryRecordWithTheReason) {
  // The system's CAs do not know the self-signed certificate: no record may pass as sent, and
  // none waits out max_outage (five minutes here): a certificate is not an outage.
  const auto client = send({{"max_outage", 300}}, "untrusted.jsonl");
  EXPECT_NE(client.exit_code, 0) << client.err;
  const auto sent = records_of(read_file(dir_.file("untrusted.jsonl")));
  ASSERT_EQ(sent.size(), 3u);
  for (const auto& record : sent) {
    EXPECT_EQ(record.at("status"), "failed") << record.dump();
    EXPECT_NE(record.at("error").get<std::string>().find("is not trusted"), std::string::npos) << record.dump();
    EXPECT_NE(record.at("error").get<std::string>().find("not retried"), std::string::npos) << record.dump();
  }
  EXPECT_EQ(client.err.find("trying again"), std::string::npos) << client.err;
  EXPECT_EQ(client.err.find("tls-test-secret-token"), std::string::npos);
  // Nothing reached the server's pipeline.
  server_->signal(SIGTERM);
  EXPECT_EQ(server_->wait(30s), 143) << server_->err();
  server_.reset();
  EXPECT_TRUE(records_of(read_file(dir_.file("server.jsonl"))).empty());
}

}  // namespace
}  // namespace etl::testing
