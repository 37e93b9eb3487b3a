#include "test_support.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/String.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace etl::testing {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string source_dir() { return ETL_TEST_SOURCE_DIR; }
std::string binary_dir() { return ETL_TEST_BINARY_DIR; }
std::string etl_host_binary() { return binary_dir() + "/bin/etl-host"; }
std::string token_source_binary() { return binary_dir() + "/bin/token-source"; }

namespace {

std::vector<std::string> child_environment(const ProcessOptions& options) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& name : options.unset_env) env.erase(name);
  for (const auto& [name, value] : options.set_env) env[name] = value;
  std::vector<std::string> result;
  for (const auto& [name, value] : env) result.push_back(name + "=" + value);
  return result;
}

/// fork + exec with stdout and stderr on pipes; returns the pid.
pid_t spawn(const std::vector<std::string>& argv, const ProcessOptions& options, int& out_fd, int& err_fd) {
  int out_pipe[2];
  int err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw std::runtime_error("pipe failed");
  }
  const auto env = child_environment(options);
  std::vector<char*> env_pointers;
  for (const auto& e : env) env_pointers.push_back(const_cast<char*>(e.c_str()));
  env_pointers.push_back(nullptr);
  std::vector<char*> arg_pointers;
  for (const auto& a : argv) arg_pointers.push_back(const_cast<char*>(a.c_str()));
  arg_pointers.push_back(nullptr);

  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Our own process group, so a test can signal the process and nothing else.
    setpgid(0, 0);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, STDIN_FILENO);
    if (!options.working_dir.empty() && chdir(options.working_dir.c_str()) != 0) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(arg_pointers[0], arg_pointers.data(), env_pointers.data());
    const std::string message = std::string("exec ") + argv[0] + ": " + std::strerror(errno) + "\n";
    [[maybe_unused]] auto ignored = write(STDERR_FILENO, message.data(), message.size());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  out_fd = out_pipe[0];
  err_fd = err_pipe[0];
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

/// Reads from both pipes until both close or the deadline passes; false on timeout.
bool drain(int out_fd, int err_fd, std::string& out, std::string& err, Clock::time_point deadline) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&out, &err};
  int open_count = 2;
  char buffer[65536];
  while (open_count > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    const int ready = poll(fds, 2, static_cast<int>(std::min<long long>(left, 1000)));
    if (ready < 0 && errno != EINTR) return false;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  return true;
}

}  // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
  int out_fd = -1;
  int err_fd = -1;
  const pid_t pid = spawn(argv, options, out_fd, err_fd);
  ProcessResult result;
  const auto deadline = Clock::now() + options.timeout;
  if (!drain(out_fd, err_fd, result.out, result.err, deadline)) {
    result.timed_out = true;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = decode_status(status);
  return result;
}

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv, const ProcessOptions& options) {
  pid_ = spawn(argv, options, out_fd_, err_fd_);
  collector_ = std::thread([this] { collect(); });
}

BackgroundProcess::~BackgroundProcess() {
  if (!exited_ && pid_ > 0) {
    kill(pid_, SIGTERM);
    if (wait(std::chrono::seconds(10)) < 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  if (collector_.joinable()) collector_.join();
}

void BackgroundProcess::collect() {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  int open_count = 2;
  char buffer[65536];
  while (open_count > 0) {
    if (poll(fds, 2, 1000) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        std::lock_guard lock(mutex_);
        (i == 0 ? out_ : err_).append(buffer, static_cast<std::size_t>(n));
        changed_.notify_all();
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  for (const auto& fd : fds) {
    if (fd.fd >= 0) close(fd.fd);
  }
  std::lock_guard lock(mutex_);
  closed_ = true;
  changed_.notify_all();
}

bool BackgroundProcess::wait_for_err(const std::string& text, std::chrono::seconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return err_.find(text) != std::string::npos || closed_; }) &&
         err_.find(text) != std::string::npos;
}

std::string BackgroundProcess::read_line(std::chrono::seconds timeout) {
  std::unique_lock lock(mutex_);
  std::size_t newline = std::string::npos;
  const bool found = changed_.wait_for(lock, timeout, [&] {
    newline = out_.find('\n', out_read_);
    return newline != std::string::npos || closed_;
  });
  if (!found) throw std::runtime_error("timed out waiting for a line from a background process");
  if (newline == std::string::npos) throw std::runtime_error("background process closed its output");
  std::string line = out_.substr(out_read_, newline - out_read_);
  out_read_ = newline + 1;
  return line;
}

std::string BackgroundProcess::out() const {
  std::lock_guard lock(mutex_);
  return out_.substr(out_read_);
}

std::string BackgroundProcess::err() const {
  std::lock_guard lock(mutex_);
  return err_;
}

void BackgroundProcess::signal(int signal_number) const { kill(pid_, signal_number); }

int BackgroundProcess::wait(std::chrono::seconds timeout) {
  if (exited_) return exit_code_;
  {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return closed_; })) return -1;
  }
  int status = 0;
  // The pipes close when the process exits; give it a moment to be reaped.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  struct rusage usage {};
  while (wait4(pid_, &status, WNOHANG, &usage) == 0) {
    if (Clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  exited_ = true;
  exit_code_ = decode_status(status);
  peak_rss_kib_ = usage.ru_maxrss;
  return exit_code_;
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "etl-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

PostgresServer::PostgresServer(const std::string& server_options) {
  std::string pattern = (fs::temp_directory_path() / "etl-pg-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  const auto script = source_dir() + "/scripts/throwaway-postgres";
  ProcessOptions options;
  if (!server_options.empty()) options.set_env["THROWAWAY_PG_OPTIONS"] = server_options;
  const auto result = run_process({script, "start", dir_}, options);
  if (result.exit_code != 0) {
    throw std::runtime_error("throwaway-postgres start failed: " + result.err);
  }
  for (const auto& line : lines_of(read_file(dir_ + "/env"))) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') value = value.substr(1, value.size() - 2);
    env_[line.substr(0, eq)] = value;
  }
}

nlohmann::json PostgresServer::connection_config() const {
  return {{"host", env_.at("DB_HOST")},        {"port", std::stoi(env_.at("DB_PORT"))}, {"user", env_.at("DB_USER")},
          {"password", env_.at("DB_PASS")},    {"dbname", env_.at("DB_NAME")},          {"sslmode", env_.at("DB_SSLMODE")},
          {"sslrootcert", env_.at("DB_SSLROOTCERT")}};
}

PostgresServer::~PostgresServer() {
  run_process({source_dir() + "/scripts/throwaway-postgres", "stop", dir_});
}

std::vector<std::vector<std::string>> PostgresServer::query(const std::string& sql, const std::string& dbname) const {
  const std::string conninfo = "host=" + dir_ + " port=" + env_.at("DB_PORT") + " user=postgres dbname=" + dbname;
  std::unique_ptr<PGconn, decltype(&PQfinish)> connection(PQconnectdb(conninfo.c_str()), &PQfinish);
  if (PQstatus(connection.get()) != CONNECTION_OK) {
    throw std::runtime_error(std::string("test connection failed: ") + PQerrorMessage(connection.get()));
  }
  std::unique_ptr<PGresult, decltype(&PQclear)> result(PQexec(connection.get(), sql.c_str()), &PQclear);
  const auto status = PQresultStatus(result.get());
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    throw std::runtime_error("query failed: " + sql + ": " + PQresultErrorMessage(result.get()));
  }
  std::vector<std::vector<std::string>> rows;
  for (int r = 0; r < PQntuples(result.get()); ++r) {
    std::vector<std::string> row;
    for (int c = 0; c < PQnfields(result.get()); ++c) row.emplace_back(PQgetvalue(result.get(), r, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

bool PostgresServer::reachable() const {
  try {
    query("SELECT 1");
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::vector<std::string> PostgresServer::tokens_in_table() const {
  std::vector<std::string> tokens;
  for (auto& row : query("SELECT data FROM secret_tokens ORDER BY id")) tokens.push_back(row.at(0));
  return tokens;
}

void PostgresServer::truncate_tokens() const { query("TRUNCATE secret_tokens RESTART IDENTITY"); }

void PostgresServer::control(const std::string& arguments) const {
  std::vector<std::string> argv;
  if (geteuid() == 0) argv = {"/usr/sbin/runuser", "-u", "postgres", "--"};
  argv.push_back(env_.at("PG_BIN_DIR") + "/pg_ctl");
  argv.push_back("-D");
  argv.push_back(dir_ + "/data");
  argv.push_back("-w");
  std::istringstream words(arguments);
  std::string word;
  while (words >> word) argv.push_back(word);
  if (arguments.starts_with("start") || arguments.starts_with("restart")) {
    argv.push_back("-l");
    argv.push_back(dir_ + "/postgres.log");
  }
  const auto result = run_process(argv);
  if (result.exit_code != 0) throw std::runtime_error("pg_ctl " + arguments + " failed: " + result.err + result.out);
}

void PostgresServer::stop() const { control("stop -m fast"); }

void PostgresServer::start() const {
  // postmaster.opts holds the command line of the last start: the binary, then its options.
  std::string options = read_file(dir_ + "/data/postmaster.opts");
  while (!options.empty() && (options.back() == '\n' || options.back() == ' ')) options.pop_back();
  const auto first = options.find(' ');
  if (first == std::string::npos) throw std::runtime_error("postmaster.opts has no options: " + options);
  std::vector<std::string> argv;
  if (geteuid() == 0) argv = {"/usr/sbin/runuser", "-u", "postgres", "--"};
  argv.insert(argv.end(), {env_.at("PG_BIN_DIR") + "/pg_ctl", "-D", dir_ + "/data", "-w", "-l", dir_ + "/postgres.log", "-o",
                           options.substr(first + 1), "start"});
  const auto result = run_process(argv);
  if (result.exit_code != 0) throw std::runtime_error("pg_ctl start failed: " + result.err + result.out);
}

TokenSource::TokenSource(bool tls, const std::vector<std::string>& extra_arguments) : tls_(tls) {
  std::vector<std::string> argv = {token_source_binary(), "--port", "0"};
  if (tls) {
    certificate_ = dir_.file("token-source.crt");
    const auto key = dir_.file("token-source.key");
    const auto made = run_process({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                   "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                                   "-keyout", key, "-out", certificate_});
    if (made.exit_code != 0) throw std::runtime_error("openssl failed: " + made.err);
    argv.insert(argv.end(), {"--tls-cert", certificate_, "--tls-key", key});
  }
  argv.insert(argv.end(), extra_arguments.begin(), extra_arguments.end());
  process_ = std::make_unique<BackgroundProcess>(argv);
  port_ = std::stoi(process_->read_line());
}

std::string TokenSource::url(const std::string& query) const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) +
         "/be-interview-env-datasource-84c27f85" + (query.empty() ? "" : "?" + query);
}

int free_port() {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  return socket.address().port();
}

HttpReply http_request(int port, const std::string& method, const std::string& path, const std::string& body) {
  return http_request(port, method, path, body, std::chrono::seconds(10));
}

HttpReply http_request(int port, const std::string& method, const std::string& path, const std::string& body,
                       std::chrono::milliseconds timeout) {
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(static_cast<long>(timeout.count() / 1000), static_cast<long>(timeout.count() % 1000) * 1000));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!body.empty()) {
      request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    HttpReply reply;
    Poco::StreamCopier::copyToString(session.receiveResponse(response), reply.body);
    reply.status = static_cast<int>(response.getStatus());
    for (const auto& [name, value] : response) reply.headers[Poco::toLower(name)] = value;
    return reply;
  } catch (const std::exception& e) {
    return {-1, e.what(), {}};
  }
}

}  // namespace etl::testing
