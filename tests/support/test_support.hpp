#pragma once
// Helpers for integration and end-to-end tests: child processes with a time limit, a throwaway
// PostgreSQL server, the token-source emulator, temporary folders.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <nlohmann/json_fwd.hpp>

namespace etl::testing {

/// Folders of this checkout and its build, baked in by CMake.
std::string source_dir();
std::string binary_dir();
std::string etl_host_binary();
std::string token_source_binary();

struct ProcessResult {
  int exit_code = -1;  ///< exit status, or 128 + signal
  std::string out;
  std::string err;
  bool timed_out = false;
};

struct ProcessOptions {
  std::map<std::string, std::string> set_env;
  std::vector<std::string> unset_env;
  std::string working_dir;
  std::chrono::seconds timeout{180};
};

/// Runs a program to completion, capturing stdout and stderr. Killed after the timeout.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

/// A program running in the background until destroyed (SIGTERM, then SIGKILL). Its output is
/// collected all along, so a chatty program never blocks on a full pipe.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const ProcessOptions& options = {});
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  /// Waits until the program has written `text` on stderr; false if it did not within
  /// `timeout` (or exited first).
  bool wait_for_err(const std::string& text, std::chrono::seconds timeout = std::chrono::seconds(30));
  /// Reads one line from the program's stdout (waits at most `timeout`).
  std::string read_line(std::chrono::seconds timeout = std::chrono::seconds(20));
  void signal(int signal_number) const;
  /// Waits for the program to exit; its exit code (128 + signal when killed), -1 on timeout.
  int wait(std::chrono::seconds timeout = std::chrono::seconds(30));
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// False once the program has exited (its output closed); unlike kill(pid, 0), which
  /// succeeds on a zombie until it is reaped.
  [[nodiscard]] bool running() const {
    std::lock_guard lock(mutex_);
    return !closed_;
  }
  /// The program's peak resident set size in KiB (after wait()).
  [[nodiscard]] long peak_rss_kib() const noexcept { return peak_rss_kib_; }
  /// What the program wrote on stderr (complete after wait()).
  [[nodiscard]] std::string err() const;
  /// What the program wrote on stdout, less the lines read_line() returned (complete after wait()).
  [[nodiscard]] std::string out() const;

 private:
  void collect();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string out_;
  std::size_t out_read_ = 0;
  std::string err_;
  bool closed_ = false;
  std::thread collector_;
  bool exited_ = false;
  int exit_code_ = -1;
  long peak_rss_kib_ = 0;
};

class TempDir {
 public:
  TempDir();
  ~TempDir();
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

/// A throwaway PostgreSQL server (scripts/throwaway-postgres): TLS on, role etl, database
/// tokens, table secret_tokens with the provider's CHECK constraint.
class PostgresServer {
 public:
  /// `server_options`: more options for the server ("-c wal_level=logical").
  explicit PostgresServer(const std::string& server_options = "");
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  /// DB_HOST, DB_PORT, DB_USER, DB_PASS, DB_NAME, DB_SSLMODE, DB_SSLROOTCERT.
  [[nodiscard]] const std::map<std::string, std::string>& env() const noexcept { return env_; }
  [[nodiscard]] std::string get(const std::string& key) const { return env_.at(key); }
  /// The connection keys of the postgres plugins (host, port, user, password, dbname, sslmode,
  /// sslrootcert) for this server, as a config object.
  [[nodiscard]] nlohmann::json connection_config() const;
  [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

  /// Runs SQL as the superuser over the server's socket; returns rows of text values.
  std::vector<std::vector<std::string>> query(const std::string& sql,
                                              const std::string& dbname = "tokens") const;
  /// Whether the server answers a query now.
  [[nodiscard]] bool reachable() const;
  /// The `data` column of secret_tokens.
  std::vector<std::string> tokens_in_table() const;
  void truncate_tokens() const;

  /// pg_ctl on this server ("stop", "restart -m immediate", ...).
  void control(const std::string& arguments) const;
  /// Stops the server (fast shutdown: sessions are ended), and starts it again with the
  /// options it had (pg_ctl start alone would forget its port, TLS and fsync settings).
  void stop() const;
  void start() const;

 private:
  std::string dir_;
  std::map<std::string, std::string> env_;
};

/// The token-source emulator on a free loopback port, over HTTP or (with `tls`) HTTPS with a
/// freshly generated self-signed certificate (`certificate()`).
class TokenSource {
 public:
  explicit TokenSource(bool tls = false, const std::vector<std::string>& extra_arguments = {});
  [[nodiscard]] int port() const noexcept { return port_; }
  /// Base URL, e.g. http://127.0.0.1:4567/be-interview-env-datasource-84c27f85
  [[nodiscard]] std::string url(const std::string& query = "") const;
  [[nodiscard]] const std::string& certificate() const noexcept { return certificate_; }

 private:
  TempDir dir_;
  bool tls_;
  std::string certificate_;
  std::unique_ptr<BackgroundProcess> process_;
  int port_ = 0;
};

/// Polls `condition` every 20 ms until it holds; false if it did not within `timeout`.
template <class Condition>
bool eventually(Condition&& condition, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

/// Splits text into lines (without the newline characters).
std::vector<std::string> lines_of(const std::string& text);

/// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

struct HttpReply {
  int status = 0;    ///< -1: no answer (the reason is in body)
  std::string body;
  std::map<std::string, std::string> headers;  ///< names lower-cased
};

/// One request on a new connection to 127.0.0.1:port (JSON body when not empty), 10 s timeout.
HttpReply http_request(int port, const std::string& method, const std::string& path, const std::string& body = "");
/// The same, waiting at most `timeout` for each part of the answer.
HttpReply http_request(int port, const std::string& method, const std::string& path, const std::string& body,
                       std::chrono::milliseconds timeout);

}  // namespace etl::testing
