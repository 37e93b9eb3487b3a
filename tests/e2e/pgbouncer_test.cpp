// The PostgreSQL plugins behind a real PgBouncer (Debian's pgbouncer) in transaction pooling
// mode, as many production databases are reached: the tokens job with prepared_statements:
// false and with the pooler left to be detected, COPY batches through it, and LISTEN refused
// through it with the reason. TLS from etl-host to PgBouncer and from PgBouncer to the server.

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <regex>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

/// PgBouncer on a free loopback port in front of `database`, pool_mode = transaction, with a
/// server pool smaller than the sink's connections so that transactions of one client
/// connection really move between server connections.
std::string read_file_or_empty(const std::string& path) {
  try {
    return read_file(path);
  } catch (const std::exception&) {
    return {};
  }
}

class PgBouncer {
 public:
  explicit PgBouncer(const PostgresServer& database) {
    dir_ = database.dir() + "/pgbouncer";
    std::filesystem::create_directories(dir_);
    port_ = free_port();
    write_file(dir_ + "/userlist.txt", "\"" + database.get("DB_USER") + "\" \"" + database.get("DB_PASS") + "\"\n");
    write_file(dir_ + "/pgbouncer.ini",
               "[databases]\n" + database.get("DB_NAME") + " = host=127.0.0.1 port=" + database.get("DB_PORT") +
                   " dbname=" + database.get("DB_NAME") +
                   "\n[pgbouncer]\n"
                   "listen_addr = 127.0.0.1\n"
                   "listen_port = " + std::to_string(port_) + "\n"
                   "unix_socket_dir =\n"
                   "auth_type = scram-sha-256\n"
                   "auth_file = " + dir_ + "/userlist.txt\n"
                   "pool_mode = transaction\n"
                   "default_pool_size = 3\n"
                   "max_client_conn = 200\n"
                   "client_tls_sslmode = require\n"
                   "client_tls_cert_file = " + database.dir() + "/server.crt\n"
                   "client_tls_key_file = " + database.dir() + "/server.key\n"
                   "server_tls_sslmode = require\n"
                   "ignore_startup_parameters = extra_float_digits\n"
                   "pidfile = " + dir_ + "/pgbouncer.pid\n");
    std::vector<std::string> argv = {"/usr/sbin/pgbouncer", dir_ + "/pgbouncer.ini"};
    if (geteuid() == 0) {
      // PgBouncer refuses to run as root; the server's files belong to postgres.
      run_process({"/bin/chown", "-R", "postgres", dir_});
      argv.insert(argv.begin(), {"/usr/sbin/runuser", "-u", "postgres", "--"});
    }
    process_ = std::make_unique<BackgroundProcess>(argv);
    if (!eventually([&] { return process_->err().find("process up") != std::string::npos; }, 20s)) {
      throw std::runtime_error("pgbouncer did not start: " + process_->err());
    }
  }
  ~PgBouncer() {
    // Its own pid (under runuser the child is PgBouncer, not the process we started).
    const std::string pid = read_file_or_empty(dir_ + "/pgbouncer.pid");
    if (!pid.empty()) ::kill(std::stoi(pid), SIGTERM);
    process_->signal(SIGTERM);
    process_->wait(10s);
  }
  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] std::string log() const { return process_->err(); }

 private:
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<BackgroundProcess> process_;
};

class ThroughPgBouncer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = std::make_unique<PostgresServer>();
    source_ = std::make_unique<TokenSource>(false, std::vector<std::string>{"--seed", "7"});
    bouncer_ = std::make_unique<PgBouncer>(*database_);
  }
  static void TearDownTestSuite() {
    bouncer_.reset();
    source_.reset();
    database_.reset();
  }
  void SetUp() override { database_->truncate_tokens(); }

  ProcessOptions environment(int count) const {
    ProcessOptions options;
    options.set_env = database_->env();
    options.set_env["DB_PORT"] = std::to_string(bouncer_->port());
    options.set_env["DB_SSLMODE"] = "require";
    options.set_env["TOKEN_HOST"] = source_->url();
    options.set_env["TOKEN_COUNT"] = std::to_string(count);
    options.set_env["REPORT_DIR"] = reports_.file("reports");
    options.unset_env = {"ETL_PLUGIN_PATH", "TOKEN_CA_FILE", "ETL_PUSHGATEWAY_URL"};
    options.working_dir = source_dir();
    return options;
  }

  /// Runs the tokens job through the pooler and checks every record against the table: the
  /// ok tokens are exactly the table's, the rejected ones are the tokens with '-', nothing
  /// failed. Returns the run's stderr.
  std::string run_tokens_job(int count, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {etl_host_binary(), "run", "pipelines/tokens.json", "--set", "sink.config.connections=8"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const ProcessResult run = run_process(argv, environment(count));
    EXPECT_EQ(run.exit_code, 0) << run.err << "\npgbouncer:\n" << bouncer_->log();
    std::vector<std::string> ok;
    int rejected = 0;
    for (const auto& line : lines_of(run.out)) {
      if (line.starts_with("OK  ")) ok.push_back(line.substr(4, 22));
      if (line.starts_with("ERR ")) {
        ++rejected;
        EXPECT_NE(line.find("rejected 23514"), std::string::npos) << line;
      }
    }
    auto stored = database_->tokens_in_table();
    std::sort(ok.begin(), ok.end());
    std::sort(stored.begin(), stored.end());
    EXPECT_EQ(ok.size() + rejected, static_cast<std::size_t>(count)) << run.out.substr(0, 2000);
    EXPECT_EQ(ok, stored);
    EXPECT_GT(rejected, 0);
    const std::smatch summary = [&] {
      std::smatch match;
      static const std::regex rate("# summary: .* ([0-9.]+) rows/s");
      std::regex_search(run.out, match, rate);
      return match;
    }();
    if (!summary.empty()) std::cerr << "through pgbouncer (transaction pooling): " << summary[1] << " rows/s\n";
    return run.err;
  }

  static inline std::unique_ptr<PostgresServer> database_;
  static inline std::unique_ptr<TokenSource> source_;
  static inline std::unique_ptr<PgBouncer> bouncer_;
  TempDir reports_;
};

TEST_F(ThroughPgBouncer, TheTokensJobWithPreparedStatementsOff) {
  const std::string log = run_tokens_job(5000, {"--set", "sink.config.prepared_statements=false"});
  EXPECT_EQ(log.find("transaction pooler ("), std::string::npos) << "nothing to detect when it was said";
}

TEST_F(ThroughPgBouncer, TheTokensJobDetectsThePoolerAndGoesOn) {
  // Named statements prepared on one server connection are missing on another (26000) or
  // already there (42P05): the sink sees it, says so once, and sends statements unnamed.
  const std::string log = run_tokens_job(5000, {});
  EXPECT_NE(log.find("transaction pooler"), std::string::npos) << log;
}

TEST_F(ThroughPgBouncer, CopyBatchesKeepPerRowOutcomes) {
  // postgres-copy: the staging table lives for one transaction, so batches survive the pooler.
  run_tokens_job(5000, {"--set", "sink.plugin=postgres-copy", "--set", "sink.config.prepared_statements=false",
                        "--set", "sink.config.connections=2"});
}

TEST_F(ThroughPgBouncer, ListenIsRefusedThroughAPoolerWithTheReason) {
  const std::string pipeline = reports_.file("listen.json");
  write_file(pipeline, json{{"source",
                             {{"plugin", "postgres-query"},
                              {"config",
                               {{"host", "127.0.0.1"}, {"port", bouncer_->port()}, {"user", database_->get("DB_USER")},
                                {"password", database_->get("DB_PASS")}, {"dbname", database_->get("DB_NAME")},
                                {"query", "SELECT id, data FROM secret_tokens"}, {"follow", true}, {"key", "id"},
                                {"listen", "tokens_added"}, {"prepared_statements", false}}}}},
                            {"sink", {{"plugin", "null"}}},
                            {"reporters", json::array({{{"plugin", "json"}, {"config", {{"path", reports_.file("r.json")}}}}})}}
                           .dump());
  const ProcessResult run = run_process({etl_host_binary(), "run", pipeline});
  EXPECT_EQ(run.exit_code, 3) << run.err;
  EXPECT_NE(run.err.find("/source/config/listen"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("transaction pooler"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find(database_->get("DB_PASS")), std::string::npos) << "the password reached the log";
}

}  // namespace
}  // namespace etl::testing
