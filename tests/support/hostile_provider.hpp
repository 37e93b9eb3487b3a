#pragma once
// A token provider that misbehaves on purpose, for tests of every bound the source promises:
// a real HTTP/1.1 peer on a loopback socket that answers each request in one hostile way.

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace etl::testing {

class HostileProvider {
 public:
  enum class Mode {
    /// Sends the status line and headers (Content-Length 10000), then nothing, ever.
    silent_after_headers,
    /// Sends the headers one byte per `interval`, without end.
    trickled_headers,
    /// Sends proper headers, then the body one byte per `interval`.
    trickled_body,
    /// Promises the asked count by Content-Length, sends one line less and half a line, then
    /// closes: every response is cut short, a one-token request yields no complete line.
    truncated,
    /// Sends lines until the client goes away (no Content-Length, no end).
    endless_body,
  };

  explicit HostileProvider(Mode mode, std::chrono::milliseconds interval = std::chrono::milliseconds(200));
  ~HostileProvider();
  HostileProvider(const HostileProvider&) = delete;
  HostileProvider& operator=(const HostileProvider&) = delete;

  [[nodiscard]] int port() const noexcept { return port_; }
  /// http://127.0.0.1:PORT/tokens
  [[nodiscard]] std::string url() const;
  /// Requests received so far.
  [[nodiscard]] int requests() const noexcept { return requests_.load(); }
  /// Every complete line sent so far, in order (the tokens a client could have received).
  [[nodiscard]] std::vector<std::string> complete_lines_sent() const;

  /// The token the provider sends as line `index` (0-based): 22 characters, no '-'.
  static std::string token(std::size_t index);

 private:
  void accept_loop();
  void serve(int client);
  bool send_all(int client, const std::string& bytes);
  bool pause() const;

  Mode mode_;
  std::chrono::milliseconds interval_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> quit_{false};
  std::atomic<int> requests_{0};
  std::atomic<std::size_t> next_line_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> sent_;
  std::vector<int> clients_;
  std::vector<std::thread> handlers_;
  std::thread acceptor_;
};

}  // namespace etl::testing
