#pragma once
// EventServer: the http-server source's connections, on one thread with epoll rather than a
// thread per connection, so that slow or idle clients cost a socket each and never hold what a
// normal client needs. Every state of a connection has a deadline:
//   - a new connection, or a request's line and headers: header_timeout (408 for a request
//     under way, or just closed when nothing came);
//   - a body: body_timeout, stretched for a large one at body_min_rate bytes per second;
//   - between requests on a kept connection: idle_timeout;
//   - an answer that the client does not read: write_timeout;
//   - a request whose record has no outcome yet: response_timeout (503, the record goes on).
// Beyond max_connections a new connection is answered 503 at once and closed. After an answer
// that ends its connection, the server stops writing and reads (and drops) what the client
// still sends for a moment, so that the client gets the answer rather than a reset.
//
// Requests are parsed by RequestParser, one at a time per connection (a pipelined request waits
// for the answer to the one before it). The Handler answers at once (health checks, 404) or
// later, from another thread, with answer(): a request that became a record is answered from its
// outcome. HTTPS with tls_cert_file and tls_key_file (OpenSSL, non-blocking).

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http_response.hpp"
#include "request_parser.hpp"

namespace etl::plugins::http_server {

class EventServer {
 public:
  struct Options {
    std::string host = "0.0.0.0";
    int port = 8080;
    bool reuse_port = true;
    int backlog = 1024;
    std::size_t max_connections = 1024;
    double header_timeout = 10;
    double body_timeout = 10;
    double body_min_rate = 65536;  // bytes per second a large body may take no longer than
    double idle_timeout = 5;
    double write_timeout = 10;
    double response_timeout = 30;
    RequestParser::Limits limits;
    std::string tls_cert_file;
    std::string tls_key_file;
  };

  /// Counts for metrics and logs.
  struct Stats {
    std::uint64_t accepted = 0;
    std::uint64_t refused = 0;           // over max_connections
    std::uint64_t timed_out_head = 0;    // 408: line and headers too slow
    std::uint64_t timed_out_body = 0;    // 408: body too slow
    std::uint64_t closed_idle = 0;       // kept or new connections that sent nothing in time
    std::uint64_t malformed = 0;         // 4xx/5xx from the parser
    std::uint64_t response_timeouts = 0; // 503: no outcome within response_timeout
    std::size_t open = 0;
  };

  class Handler {
   public:
    virtual ~Handler() = default;
    /// A complete request. Returns the answer now, or nullopt: answer(exchange, ...) comes later
    /// (from any thread).
    virtual std::optional<HttpResponse> on_request(std::uint64_t exchange, HttpRequest& request) = 0;
    /// The server answered `exchange` itself (response_timeout, 503) or lost its connection: a
    /// later answer() for it is ignored. `status` is what the client got (0: nothing).
    virtual void on_abandoned(std::uint64_t exchange, int status) = 0;
  };

  EventServer(Options options, Handler& handler);
  ~EventServer();
  EventServer(const EventServer&) = delete;
  EventServer& operator=(const EventServer&) = delete;

  /// Binds and listens, then serves on a thread of its own. Throws std::runtime_error naming
  /// the address (or the certificate) when it cannot.
  void start();
  /// The port listened on (the one bound when the config said 0).
  [[nodiscard]] int port() const noexcept { return bound_port_; }

  /// The answer to `exchange`, from any thread.
  void answer(std::uint64_t exchange, HttpResponse response);

  /// Closes the listener. Connections with a request under way are still served, each answer
  /// from now on says Connection: close; kept connections between requests are closed.
  void stop_accepting();
  /// Connections still open.
  [[nodiscard]] std::size_t open_connections() const noexcept { return open_.load(); }
  [[nodiscard]] Stats stats() const;

  /// Ends the loop; requests still waiting are answered 503 ("the service is stopping"), every
  /// connection closed.
  void close();

 private:
  struct Connection;
  struct Posted {
    std::uint64_t exchange;
    HttpResponse response;
  };

  void loop();
  void accept_all();
  void on_event(Connection& connection, std::uint32_t events);
  void read_from(Connection& connection);
  void process(Connection& connection);
  void respond(Connection& connection, HttpResponse response, bool head, bool keep_alive);
  void write_to(Connection& connection);
  void sweep();
  void take_posted();
  void update_interest(Connection& connection);
  void begin_close(Connection& connection);
  /// Ends a connection: it is closed and freed by reap() at the end of the loop's turn, so that a
  /// caller up the stack may still look at it (`dead`), and its descriptor is not handed out again
  /// meanwhile.
  void drop(Connection& connection, int status_sent);
  void reap();
  bool handshake(Connection& connection);
  [[nodiscard]] double now() const;

  Options options_;
  Handler& handler_;
  int epoll_ = -1;
  int listener_ = -1;
  int wake_ = -1;  // eventfd: answers posted, a stop
  int bound_port_ = 0;
  void* tls_ = nullptr;  // SSL_CTX*
  std::thread thread_;
  std::atomic<bool> accepting_{true};
  std::atomic<bool> closing_{false};
  std::atomic<std::size_t> open_{0};

  std::mutex posted_mutex_;
  std::vector<Posted> posted_;

  // Loop thread only:
  std::vector<std::unique_ptr<Connection>> connections_;  // by descriptor
  std::unordered_map<std::uint64_t, int> exchanges_;  // exchange -> descriptor
  std::vector<int> dead_;                             // dropped, to close at the end of the turn
  std::uint64_t next_exchange_ = 0;
  double last_sweep_ = 0;
  bool listener_closed_ = false;

  mutable std::mutex stats_mutex_;
  Stats stats_;
};

}  // namespace etl::plugins::http_server
