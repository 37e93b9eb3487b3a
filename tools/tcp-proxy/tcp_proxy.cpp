// tcp-proxy: forwards TCP connections to a target, adding latency and faults, for benchmarks
// and fault-injection tests.
//
//   tcp-proxy --target HOST:PORT [--listen PORT] [--delay-ms D]
//             [--reset-after-bytes N | LOW-HIGH] [--seed S]
//
// --delay-ms D        every chunk is delivered D ms (fractions allowed) after it was read, in
//                     each direction: a round trip through the proxy costs 2*D more.
// --reset-after-bytes each connection is reset once it has carried N bytes (both directions
//                     together), or a number drawn from LOW-HIGH per connection (--seed).
//
// Prints the port it listens on, then "control PORT": a line-based control port that takes
//   reset        reset one live connection, chosen at random (data held in the proxy is lost)
//   reset all    reset every live connection
//   stall        stop delivering on every live connection (data is held, not lost; new
//                connections are not stalled)
//   stall one    stop delivering on one live connection, chosen at random
//   resume       deliver again (on every stalled connection)
//   down         refuse new connections (accept and reset at once)
//   up           accept new connections again
//   count        the number of live connections
// and answers each with "ok N" (N: connections affected) or "error ...". Serves until SIGTERM
// or SIGINT.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target_host;
  std::string target_port;
  int listen_port = 0;
  std::chrono::nanoseconds delay{0};
  std::uint64_t reset_low = 0;  // 0: never
  std::uint64_t reset_high = 0;
  std::uint64_t seed = 1;
};

void no_delay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int connect_to(const Options& options) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(options.target_host.c_str(), options.target_port.c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd >= 0) no_delay(fd);
  return fd;
}

/// Closing with a zero linger time sends RST instead of FIN: the peer sees "connection reset".
void abort_socket(int fd) {
  linger hard{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  shutdown(fd, SHUT_RDWR);
}

/// A proxied connection: both sockets and the faults applied to it.
struct Link {
  int client = -1;
  int server = -1;
  std::uint64_t reset_after = 0;  // 0: never
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<bool> stalled{false};
  std::atomic<bool> broken{false};

  void reset() {
    if (broken.exchange(true)) return;
    abort_socket(client);
    abort_socket(server);
  }
  void count(std::size_t n) {
    const std::uint64_t total = bytes.fetch_add(n) + n;
    if (reset_after != 0 && total >= reset_after) reset();
  }
};

/// One direction of a connection: a reader stamps each chunk with its delivery time, a writer
/// delivers it then. Order is kept; the delay is added once per chunk, not per byte.
class Direction {
 public:
  Direction(Link& link, int from, int to, std::chrono::nanoseconds delay)
      : link_(link), from_(from), to_(to), delay_(delay) {}

  void run() {
    std::thread writer([this] { write_loop(); });
    std::vector<char> buffer(256 * 1024);
    while (true) {
      const ssize_t n = read(from_, buffer.data(), buffer.size());
      std::lock_guard lock(mutex_);
      if (n <= 0 || link_.broken) {
        done_ = true;
        ready_.notify_one();
        break;
      }
      chunks_.push_back({Clock::now() + delay_, std::string(buffer.data(), static_cast<std::size_t>(n))});
      ready_.notify_one();
    }
    writer.join();
  }

 private:
  struct Chunk {
    Clock::time_point due;
    std::string data;
  };

  void write_loop() {
    while (true) {
      Chunk chunk;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return !chunks_.empty() || done_; });
        if (chunks_.empty() || link_.broken) break;
        chunk = std::move(chunks_.front());
        chunks_.pop_front();
      }
      std::this_thread::sleep_until(chunk.due);
      while (link_.stalled && !link_.broken) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (link_.broken) break;  // what the proxy held is lost with the connection
      std::size_t sent = 0;
      while (sent < chunk.data.size()) {
        const ssize_t n = send(to_, chunk.data.data() + sent, chunk.data.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
          shutdown(from_, SHUT_RDWR);  // the peer is gone: stop reading too
          return;
        }
        sent += static_cast<std::size_t>(n);
      }
      link_.count(chunk.data.size());
    }
    if (!link_.broken) shutdown(to_, SHUT_WR);
  }

  Link& link_;
  int from_;
  int to_;
  std::chrono::nanoseconds delay_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Chunk> chunks_;
  bool done_ = false;
};

class Proxy {
 public:
  explicit Proxy(Options options) : options_(std::move(options)), random_(options_.seed) {}

  void serve(int client) {
    no_delay(client);
    if (down_) {
      abort_socket(client);
      close(client);
      return;
    }
    const int server = connect_to(options_);
    if (server < 0) {
      abort_socket(client);
      close(client);
      return;
    }
    auto link = std::make_shared<Link>();
    link->client = client;
    link->server = server;
    {
      std::lock_guard lock(mutex_);
      if (options_.reset_low != 0) {
        std::uniform_int_distribution<std::uint64_t> draw(options_.reset_low, std::max(options_.reset_low, options_.reset_high));
        link->reset_after = draw(random_);
      }
      links_.push_back(link);
    }
    Direction up(*link, client, server, options_.delay);
    Direction down(*link, server, client, options_.delay);
    std::thread upstream([&] { up.run(); });
    down.run();
    upstream.join();
    {
      std::lock_guard lock(mutex_);
      links_.erase(std::remove(links_.begin(), links_.end(), link), links_.end());
    }
    close(client);
    close(server);
  }

  /// Applies one control command; the answer line.
  std::string command(const std::string& line) {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Link>> live;
    for (const auto& link : links_) {
      if (!link->broken) live.push_back(link);
    }
    if (line == "reset") {
      if (live.empty()) return "ok 0";
      std::uniform_int_distribution<std::size_t> pick(0, live.size() - 1);
      live[pick(random_)]->reset();
      return "ok 1";
    }
    if (line == "reset all") {
      for (const auto& link : live) link->reset();
      return "ok " + std::to_string(live.size());
    }
    if (line == "stall one") {
      // One connection only: the others go on (a stuck backend, a half-broken path).
      if (live.empty()) return "ok 0";
      std::uniform_int_distribution<std::size_t> pick(0, live.size() - 1);
      live[pick(random_)]->stalled = true;
      return "ok 1";
    }
    if (line == "stall" || line == "resume") {
      for (const auto& link : live) link->stalled = line == "stall";
      return "ok " + std::to_string(live.size());
    }
    if (line == "down" || line == "up") {
      down_ = line == "down";
      return "ok 0";
    }
    if (line == "count") return "ok " + std::to_string(live.size());
    return "error unknown command: " + line;
  }

 private:
  Options options_;
  std::mutex mutex_;
  std::mt19937_64 random_;
  std::vector<std::shared_ptr<Link>> links_;
  std::atomic<bool> down_{false};
};

int listen_on(int port) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(listener, 128) != 0) {
    std::cerr << "tcp-proxy: cannot listen on port " << port << ": " << std::strerror(errno) << "\n";
    std::exit(1);
  }
  return listener;
}

int port_of(int listener) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  return ntohs(address.sin_port);
}

void control_session(Proxy& proxy, int fd) {
  std::string buffer;
  char chunk[512];
  while (true) {
    const ssize_t n = read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    buffer.append(chunk, static_cast<std::size_t>(n));
    for (auto newline = buffer.find('\n'); newline != std::string::npos; newline = buffer.find('\n')) {
      std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const std::string answer = proxy.command(line) + "\n";
      if (send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) < 0) break;
    }
  }
  close(fd);
}

bool parse_range(const std::string& text, std::uint64_t& low, std::uint64_t& high) {
  try {
    const auto dash = text.find('-');
    low = std::stoull(text.substr(0, dash));
    high = dash == std::string::npos ? low : std::stoull(text.substr(dash + 1));
    return low > 0 && high >= low;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (value == nullptr) {
      std::cerr << "tcp-proxy: " << arg << " needs a value\n";
      return 2;
    }
    ++i;
    if (arg == "--target") {
      const std::string target = value;
      const auto colon = target.rfind(':');
      if (colon == std::string::npos) {
        std::cerr << "tcp-proxy: --target expects HOST:PORT\n";
        return 2;
      }
      options.target_host = target.substr(0, colon);
      options.target_port = target.substr(colon + 1);
    } else if (arg == "--listen") {
      options.listen_port = std::stoi(value);
    } else if (arg == "--delay-ms") {
      options.delay = std::chrono::nanoseconds(static_cast<long long>(std::stod(value) * 1e6));
    } else if (arg == "--reset-after-bytes") {
      if (!parse_range(value, options.reset_low, options.reset_high)) {
        std::cerr << "tcp-proxy: --reset-after-bytes expects N or LOW-HIGH (positive), got '" << value << "'\n";
        return 2;
      }
    } else if (arg == "--seed") {
      options.seed = std::stoull(value);
    } else {
      std::cerr << "tcp-proxy: unknown argument " << arg << "\n";
      return 2;
    }
  }
  if (options.target_host.empty()) {
    std::cerr << "usage: tcp-proxy --target HOST:PORT [--listen PORT] [--delay-ms D] "
                 "[--reset-after-bytes N|LOW-HIGH] [--seed S]\n";
    return 2;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Proxy proxy(options);
  const int listener = listen_on(options.listen_port);
  const int control = listen_on(0);
  std::cout << port_of(listener) << "\ncontrol " << port_of(control) << std::endl;

  std::thread acceptor([&] {
    while (true) {
      const int client = accept(listener, nullptr, nullptr);
      if (client < 0) break;
      std::thread([client, &proxy] { proxy.serve(client); }).detach();
    }
  });
  std::thread controller([&] {
    while (true) {
      const int fd = accept(control, nullptr, nullptr);
      if (fd < 0) break;
      std::thread([fd, &proxy] { control_session(proxy, fd); }).detach();
    }
  });
  int received = 0;
  sigwait(&signals, &received);
  shutdown(listener, SHUT_RDWR);
  close(listener);
  shutdown(control, SHUT_RDWR);
  close(control);
  acceptor.join();
  controller.join();
  return 0;
}
