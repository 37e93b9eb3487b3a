// tcp-proxy: forwards TCP connections to a target, adding latency, for benchmarks and
// fault-injection tests.
//
//   tcp-proxy --target HOST:PORT [--listen PORT] [--delay-ms D]
//
// Every chunk of bytes is delivered D milliseconds (fractions allowed) after it was read, in
// each direction, so a round trip through the proxy costs 2*D more. Prints the port it listens
// on, then serves until SIGTERM or SIGINT.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
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

/// One direction of a connection: a reader stamps each chunk with its delivery time, a writer
/// delivers it then. Order is kept; the delay is added once per chunk, not per byte.
class Direction {
 public:
  Direction(int from, int to, std::chrono::nanoseconds delay) : from_(from), to_(to), delay_(delay) {}

  void run() {
    std::thread writer([this] { write_loop(); });
    std::vector<char> buffer(256 * 1024);
    while (true) {
      const ssize_t n = read(from_, buffer.data(), buffer.size());
      std::lock_guard lock(mutex_);
      if (n <= 0) {
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
        if (chunks_.empty()) break;
        chunk = std::move(chunks_.front());
        chunks_.pop_front();
      }
      std::this_thread::sleep_until(chunk.due);
      std::size_t sent = 0;
      while (sent < chunk.data.size()) {
        const ssize_t n = send(to_, chunk.data.data() + sent, chunk.data.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
          shutdown(from_, SHUT_RDWR);  // the peer is gone: stop reading too
          return;
        }
        sent += static_cast<std::size_t>(n);
      }
    }
    shutdown(to_, SHUT_WR);
  }

  int from_;
  int to_;
  std::chrono::nanoseconds delay_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Chunk> chunks_;
  bool done_ = false;
};

void serve(int client, const Options& options) {
  no_delay(client);
  const int server = connect_to(options);
  if (server < 0) {
    close(client);
    return;
  }
  Direction up(client, server, options.delay);
  Direction down(server, client, options.delay);
  std::thread upstream([&] { up.run(); });
  down.run();
  upstream.join();
  close(client);
  close(server);
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
    } else {
      std::cerr << "tcp-proxy: unknown argument " << arg << "\n";
      return 2;
    }
  }
  if (options.target_host.empty()) {
    std::cerr << "usage: tcp-proxy --target HOST:PORT [--listen PORT] [--delay-ms D]\n";
    return 2;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(options.listen_port));
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(listener, 128) != 0) {
    std::cerr << "tcp-proxy: cannot listen: " << std::strerror(errno) << "\n";
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::cout << ntohs(address.sin_port) << std::endl;

  std::thread acceptor([&] {
    while (true) {
      const int client = accept(listener, nullptr, nullptr);
      if (client < 0) break;
      std::thread([client, &options] { serve(client, options); }).detach();
    }
  });
  int received = 0;
  sigwait(&signals, &received);
  shutdown(listener, SHUT_RDWR);
  close(listener);
  acceptor.join();
  return 0;
}
