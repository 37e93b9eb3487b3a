#include "event_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace etl::plugins::http_server {

namespace {

/// How long, after an answer that ends its connection, what the client still sends is read and
/// dropped (so that the client reads the answer instead of meeting a reset).
constexpr double kLinger = 2.0;
/// Bytes read from one connection per readiness event: a fast sender does not starve the others.
constexpr std::size_t kReadChunk = 65536;
/// Unparsed input a connection may hold (a pipelined request waiting for the one before it).
constexpr std::size_t kMaxBuffered = 1 << 20;

const char kRefused[] =
    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 58\r\nRetry-After: 1\r\n"
    "Connection: close\r\n\r\n{\"error\":\"too many open connections\",\"code\":\"overloaded\"}\n";

std::string ssl_error_text() {
  char text[256];
  const unsigned long code = ERR_get_error();
  if (code == 0) return "unknown TLS error";
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

}  // namespace

struct EventServer::Connection {
  enum class Phase { handshake, reading, waiting, writing_last, lingering };
  int fd = -1;
  SSL* ssl = nullptr;
  Phase phase = Phase::reading;
  RequestParser parser;
  std::string in;
  std::size_t in_offset = 0;
  std::string out;
  std::size_t out_offset = 0;
  std::uint32_t interest = 0;
  bool peer_closed = false;
  bool close_after_write = false;
  bool ssl_read_wants_write = false;
  bool any_byte = false;          // the client has sent something on this connection
  bool processing = false;        // process() is on the stack: no re-entry from a write
  bool dead = false;              // dropped: closed and freed at the end of the loop's turn
  std::uint64_t exchange = 0;     // the request waiting for its answer, or 0
  bool pending_head = false;      // ... a HEAD request
  bool pending_keep_alive = true;
  double deadline = 0;            // of the current state (0: none)
  double request_started = 0;     // first byte of the request under way (0: none)
  double last_write = 0;

  explicit Connection(const RequestParser::Limits& limits) : parser(limits) {}
};

EventServer::EventServer(Options options, Handler& handler) : options_(std::move(options)), handler_(handler) {}

EventServer::~EventServer() {
  close();
  if (tls_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(tls_));
}

double EventServer::now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void EventServer::start() {
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  if (!options_.tls_cert_file.empty()) {
    SSL_CTX* context = SSL_CTX_new(TLS_server_method());
    if (context == nullptr) throw std::runtime_error("cannot make a TLS context: " + ssl_error_text());
    tls_ = context;
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(context, options_.tls_cert_file.c_str()) != 1) {
      throw std::runtime_error("tls_cert_file " + options_.tls_cert_file + ": " + ssl_error_text());
    }
    if (SSL_CTX_use_PrivateKey_file(context, options_.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      throw std::runtime_error("tls_key_file: " + ssl_error_text());
    }
    if (SSL_CTX_check_private_key(context) != 1) throw std::runtime_error("tls_key_file does not match tls_cert_file");
  }
  // Enough descriptors for max_connections: the soft limit (often 1024) is raised to the hard one.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < options_.max_connections + 64) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, options_.max_connections + 64);
    setrlimit(RLIMIT_NOFILE, &files);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options_.port);
  if (const int error = getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found); error != 0) {
    throw std::runtime_error("cannot listen on " + where + ": " + gai_strerror(error));
  }
  std::string failure = "no address";
  for (addrinfo* address = found; address != nullptr && listener_ < 0; address = address->ai_next) {
    const int fd = socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, address->ai_protocol);
    if (fd < 0) {
      failure = std::strerror(errno);
      continue;
    }
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (options_.reuse_port) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof yes);
    if (bind(fd, address->ai_addr, address->ai_addrlen) != 0 || listen(fd, options_.backlog) != 0) {
      failure = std::strerror(errno);
      ::close(fd);
      continue;
    }
    listener_ = fd;
  }
  freeaddrinfo(found);
  if (listener_ < 0) throw std::runtime_error("cannot listen on " + where + ": " + failure);
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &length);
  bound_port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_ < 0 || wake_ < 0) throw std::runtime_error(std::string("cannot set up the event loop: ") + std::strerror(errno));
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener_;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, listener_, &event);
  event.data.fd = wake_;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &event);
  last_sweep_ = now();
  thread_ = std::thread([this] { loop(); });
}

void EventServer::answer(std::uint64_t exchange, HttpResponse response) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(Posted{exchange, std::move(response)});
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto ignored = ::write(wake_, &one, sizeof one);
}

void EventServer::stop_accepting() {
  if (!accepting_.exchange(false) || wake_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto ignored = ::write(wake_, &one, sizeof one);
}

EventServer::Stats EventServer::stats() const {
  std::lock_guard lock(stats_mutex_);
  Stats out = stats_;
  out.open = open_.load();
  return out;
}

void EventServer::close() {
  if (!thread_.joinable()) return;
  closing_ = true;
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto ignored = ::write(wake_, &one, sizeof one);
  thread_.join();
  reap();
  // Whatever still waits for its answer gets one, as far as the socket takes it at once.
  for (auto& connection : connections_) {
    if (!connection) continue;
    if (connection->exchange != 0) {
      const HttpResponse stopping = error_response(503, "the service is stopping", "stopping");
      const std::string bytes = serialize(stopping, connection->pending_head, false);
      if (connection->ssl != nullptr) {
        SSL_write(connection->ssl, bytes.data(), static_cast<int>(bytes.size()));
      } else {
        [[maybe_unused]] const auto sent = ::send(connection->fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      handler_.on_abandoned(connection->exchange, 503);
    }
    if (connection->ssl != nullptr) SSL_free(connection->ssl);
    ::close(connection->fd);
  }
  connections_.clear();
  open_ = 0;
  if (listener_ >= 0 && !listener_closed_) ::close(listener_);
  ::close(epoll_);
  ::close(wake_);
}

void EventServer::loop() {
  epoll_event events[256];
  while (!closing_) {
    const int ready = epoll_wait(epoll_, events, 256, 100);
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < ready; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener_ && !listener_closed_) {
        accept_all();
      } else if (fd == wake_) {
        std::uint64_t count = 0;
        [[maybe_unused]] const auto ignored = ::read(wake_, &count, sizeof count);
      } else if (fd >= 0 && static_cast<std::size_t>(fd) < connections_.size() && connections_[fd] &&
                 !connections_[fd]->dead) {
        on_event(*connections_[fd], events[i].events);
      }
    }
    take_posted();
    if (!accepting_ && !listener_closed_) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, listener_, nullptr);
      ::close(listener_);
      listener_closed_ = true;
      // Kept connections between requests end now: those that served a request and have nothing
      // of a next one, not even unread in the socket. A connection whose first request has not
      // arrived yet, or one under way, is still served (its answer says Connection: close).
      for (auto& connection : connections_) {
        if (!connection || connection->dead || connection->exchange != 0 || connection->request_started != 0 ||
            !connection->any_byte || connection->phase != Connection::Phase::reading ||
            connection->out_offset < connection->out.size()) {
          continue;
        }
        char peek = 0;
        if (connection->ssl == nullptr && ::recv(connection->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) > 0) continue;
        if (connection->ssl != nullptr && SSL_pending(connection->ssl) > 0) continue;
        drop(*connection, 0);
      }
    }
    if (now() - last_sweep_ >= 0.1) sweep();
    reap();
  }
}

void EventServer::accept_all() {
  while (true) {
    const int fd = accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection reset before it was taken, or no descriptors left
    if (open_.load() >= options_.max_connections) {
      {
        // Counted before the answer: whoever has seen the 503 sees it counted.
        std::lock_guard lock(stats_mutex_);
        ++stats_.refused;
      }
      [[maybe_unused]] const auto sent = ::send(fd, kRefused, sizeof kRefused - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      ::shutdown(fd, SHUT_WR);
      ::close(fd);
      continue;
    }
    const int yes = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    if (static_cast<std::size_t>(fd) >= connections_.size()) connections_.resize(static_cast<std::size_t>(fd) + 1);
    auto connection = std::make_unique<Connection>(options_.limits);
    connection->fd = fd;
    connection->deadline = now() + options_.header_timeout;
    if (tls_ != nullptr) {
      connection->ssl = SSL_new(static_cast<SSL_CTX*>(tls_));
      SSL_set_fd(connection->ssl, fd);
      SSL_set_accept_state(connection->ssl);
      connection->phase = Connection::Phase::handshake;
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event);
    connection->interest = EPOLLIN;
    connections_[static_cast<std::size_t>(fd)] = std::move(connection);
    ++open_;
    std::lock_guard lock(stats_mutex_);
    ++stats_.accepted;
  }
}

bool EventServer::handshake(Connection& connection) {
  const int done = SSL_accept(connection.ssl);
  if (done == 1) {
    connection.phase = Connection::Phase::reading;
    return true;
  }
  const int error = SSL_get_error(connection.ssl, done);
  if (error == SSL_ERROR_WANT_READ) {
    connection.interest = EPOLLIN;
  } else if (error == SSL_ERROR_WANT_WRITE) {
    connection.interest = EPOLLOUT;
  } else {
    ERR_clear_error();
    drop(connection, 0);
    return false;
  }
  epoll_event event{};
  event.events = connection.interest;
  event.data.fd = connection.fd;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, connection.fd, &event);
  return false;
}

void EventServer::on_event(Connection& connection, std::uint32_t events) {
  if (connection.phase == Connection::Phase::handshake) {
    if (!handshake(connection)) return;
  }
  if ((events & (EPOLLOUT)) != 0 || connection.ssl_read_wants_write) write_to(connection);
  if (connection.dead) return;
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0) read_from(connection);
}

void EventServer::read_from(Connection& connection) {
  const int fd = connection.fd;
  char buffer[16384];
  std::size_t taken = 0;
  while (taken < kReadChunk) {
    ssize_t got = 0;
    if (connection.ssl != nullptr) {
      got = SSL_read(connection.ssl, buffer, sizeof buffer);
      if (got <= 0) {
        const int error = SSL_get_error(connection.ssl, static_cast<int>(got));
        if (error == SSL_ERROR_WANT_READ) break;
        if (error == SSL_ERROR_WANT_WRITE) {
          connection.ssl_read_wants_write = true;
          break;
        }
        ERR_clear_error();
        got = error == SSL_ERROR_ZERO_RETURN ? 0 : -1;
        if (got < 0) {
          drop(connection, 0);
          return;
        }
      }
    } else {
      got = ::recv(fd, buffer, sizeof buffer, 0);
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        drop(connection, 0);
        return;
      }
    }
    if (got == 0) {
      connection.peer_closed = true;
      break;
    }
    taken += static_cast<std::size_t>(got);
    if (connection.phase == Connection::Phase::lingering) continue;  // dropped unread
    connection.any_byte = true;
    connection.in.append(buffer, static_cast<std::size_t>(got));
    if (connection.in.size() - connection.in_offset > kMaxBuffered) break;
  }
  if (connection.phase == Connection::Phase::lingering) {
    if (connection.peer_closed) drop(connection, 0);
    return;
  }
  process(connection);
}

void EventServer::process(Connection& connection) {
  struct Processing {
    Connection& connection;
    explicit Processing(Connection& c) : connection(c) { connection.processing = true; }
    ~Processing() { connection.processing = false; }
  };
  auto alive = [&] { return !connection.dead; };
  Processing guard(connection);
  while (connection.exchange == 0 && connection.phase == Connection::Phase::reading && !connection.close_after_write) {
    RequestParser& parser = connection.parser;
    const std::size_t available = connection.in.size() - connection.in_offset;
    if (available > 0) {
      if (connection.request_started == 0) connection.request_started = now();
      connection.in_offset += parser.feed(connection.in.data() + connection.in_offset, available);
    }
    if (connection.in_offset == connection.in.size()) {
      connection.in.clear();
      connection.in_offset = 0;
    }
    if (parser.wants_continue()) {
      parser.continue_sent();
      connection.out += "HTTP/1.1 100 Continue\r\n\r\n";
      write_to(connection);
      if (!alive()) return;
    }
    if (connection.peer_closed && parser.state() != RequestParser::State::complete) parser.end_of_stream();
    const RequestParser::State state = parser.state();
    if (state == RequestParser::State::error) {
      {
        std::lock_guard lock(stats_mutex_);
        ++stats_.malformed;
      }
      HttpResponse refused = error_response(parser.error_status(), parser.error_message(), "http.malformed");
      refused.close = true;
      respond(connection, std::move(refused), false, false);
      return;
    }
    if (state == RequestParser::State::complete) {
      HttpRequest request = parser.take();
      const bool head = request.method == "HEAD";
      const bool keep_alive = request.keep_alive && accepting_.load() && !connection.peer_closed;
      const std::uint64_t exchange = ++next_exchange_;
      std::optional<HttpResponse> now_answer = handler_.on_request(exchange, request);
      if (now_answer) {
        respond(connection, std::move(*now_answer), head, keep_alive);
        if (!alive()) return;
        continue;
      }
      connection.exchange = exchange;
      connection.pending_head = head;
      connection.pending_keep_alive = keep_alive;
      connection.phase = Connection::Phase::waiting;
      connection.deadline = now() + options_.response_timeout;
      exchanges_[exchange] = connection.fd;
      update_interest(connection);
      return;
    }
    // Waiting for more of the request, or for the next one.
    if (connection.peer_closed) {
      drop(connection, 0);
      return;
    }
    if (state == RequestParser::State::idle) {
      connection.request_started = 0;
      if (connection.any_byte) connection.deadline = now() + options_.idle_timeout;
    } else if (state == RequestParser::State::head) {
      connection.deadline = connection.request_started + options_.header_timeout;
    } else if (state == RequestParser::State::body) {
      const double stretched = static_cast<double>(parser.declared_length()) / std::max(1.0, options_.body_min_rate);
      connection.deadline = now() + std::max(options_.body_timeout, stretched);
      // Kept as the body's own start: a body that trickles does not reset it with every byte.
      if (connection.deadline > connection.request_started + options_.header_timeout + std::max(options_.body_timeout, stretched)) {
        connection.deadline = connection.request_started + options_.header_timeout + std::max(options_.body_timeout, stretched);
      }
    }
    update_interest(connection);
    return;
  }
}

void EventServer::respond(Connection& connection, HttpResponse response, bool head, bool keep_alive) {
  const bool last = !keep_alive || response.close || !accepting_.load();
  connection.out += serialize(response, head, !last);
  connection.exchange = 0;
  connection.request_started = 0;
  if (last) {
    connection.close_after_write = true;
    connection.phase = Connection::Phase::writing_last;
  } else {
    connection.phase = Connection::Phase::reading;
    connection.parser.next();
    connection.deadline = now() + options_.idle_timeout;
  }
  connection.last_write = now();
  write_to(connection);
}

void EventServer::write_to(Connection& connection) {
  connection.ssl_read_wants_write = false;
  while (connection.out_offset < connection.out.size()) {
    const char* data = connection.out.data() + connection.out_offset;
    const std::size_t size = connection.out.size() - connection.out_offset;
    ssize_t sent = 0;
    if (connection.ssl != nullptr) {
      sent = SSL_write(connection.ssl, data, static_cast<int>(size));
      if (sent <= 0) {
        const int error = SSL_get_error(connection.ssl, static_cast<int>(sent));
        if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) break;
        ERR_clear_error();
        drop(connection, 0);
        return;
      }
    } else {
      sent = ::send(connection.fd, data, size, MSG_NOSIGNAL);
      if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        drop(connection, 0);
        return;
      }
    }
    connection.out_offset += static_cast<std::size_t>(sent);
    connection.last_write = now();
  }
  if (connection.out_offset >= connection.out.size()) {
    connection.out.clear();
    connection.out_offset = 0;
    if (connection.close_after_write) {
      begin_close(connection);
      return;
    }
  }
  update_interest(connection);
  // A pipelined request already read waits for this answer; go on with it (unless this write is
  // process()'s own, which goes on by itself).
  if (!connection.processing && connection.phase == Connection::Phase::reading &&
      connection.in.size() > connection.in_offset && connection.out.empty()) {
    process(connection);
  }
}

void EventServer::begin_close(Connection& connection) {
  if (connection.ssl != nullptr) {
    SSL_shutdown(connection.ssl);
    ERR_clear_error();
  }
  ::shutdown(connection.fd, SHUT_WR);
  if (connection.peer_closed) {
    drop(connection, 0);
    return;
  }
  connection.phase = Connection::Phase::lingering;
  connection.deadline = now() + kLinger;
  connection.in.clear();
  connection.in_offset = 0;
  update_interest(connection);
}

void EventServer::update_interest(Connection& connection) {
  std::uint32_t interest = 0;
  const bool writing = connection.out_offset < connection.out.size() || connection.ssl_read_wants_write;
  if (writing) interest |= EPOLLOUT;
  const bool reading = connection.phase == Connection::Phase::lingering ||
                       (connection.phase == Connection::Phase::reading && !connection.peer_closed &&
                        connection.in.size() - connection.in_offset <= kMaxBuffered);
  if (reading) interest |= EPOLLIN | EPOLLRDHUP;
  if (interest == connection.interest) return;
  epoll_event event{};
  event.events = interest;
  event.data.fd = connection.fd;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, connection.fd, &event);
  connection.interest = interest;
}

void EventServer::drop(Connection& connection, int status_sent) {
  if (connection.dead) return;
  if (connection.exchange != 0) {
    exchanges_.erase(connection.exchange);
    handler_.on_abandoned(connection.exchange, status_sent);
    connection.exchange = 0;
  }
  epoll_ctl(epoll_, EPOLL_CTL_DEL, connection.fd, nullptr);
  connection.dead = true;
  dead_.push_back(connection.fd);
  --open_;
}

void EventServer::reap() {
  for (const int fd : dead_) {
    std::unique_ptr<Connection>& slot = connections_[static_cast<std::size_t>(fd)];
    if (slot && slot->ssl != nullptr) SSL_free(slot->ssl);
    ::close(fd);
    slot.reset();
  }
  dead_.clear();
}

void EventServer::take_posted() {
  std::vector<Posted> posted;
  {
    std::lock_guard lock(posted_mutex_);
    posted.swap(posted_);
  }
  for (auto& [exchange, response] : posted) {
    const auto found = exchanges_.find(exchange);
    if (found == exchanges_.end()) continue;  // answered already (response_timeout), or its connection is gone
    const int fd = found->second;
    exchanges_.erase(found);
    Connection* connection = static_cast<std::size_t>(fd) < connections_.size() ? connections_[fd].get() : nullptr;
    if (connection == nullptr || connection->dead || connection->exchange != exchange) continue;
    respond(*connection, std::move(response), connection->pending_head, connection->pending_keep_alive);
  }
}

void EventServer::sweep() {
  const double at = now();
  last_sweep_ = at;
  for (auto& slot : connections_) {
    if (!slot || slot->dead) continue;
    Connection& connection = *slot;
    if (connection.out_offset < connection.out.size() && at - connection.last_write > options_.write_timeout) {
      drop(connection, 0);  // a client that does not read its answer
      continue;
    }
    if (connection.deadline == 0 || at < connection.deadline) continue;
    switch (connection.phase) {
      case Connection::Phase::handshake:
      case Connection::Phase::lingering:
      case Connection::Phase::writing_last:
        if (connection.phase == Connection::Phase::writing_last && connection.out_offset < connection.out.size()) break;
        drop(connection, 0);
        break;
      case Connection::Phase::waiting: {
        // The record goes on (its outcome is still reported); the client is told now.
        const std::uint64_t exchange = connection.exchange;
        exchanges_.erase(exchange);
        handler_.on_abandoned(exchange, 503);
        {
          std::lock_guard lock(stats_mutex_);
          ++stats_.response_timeouts;
        }
        HttpResponse late = error_response(503, "no outcome within response_timeout", "timeout");
        late.headers.emplace_back("Retry-After", "1");
        respond(connection, std::move(late), connection.pending_head, connection.pending_keep_alive);
        break;
      }
      case Connection::Phase::reading: {
        const RequestParser::State state = connection.parser.state();
        if (state == RequestParser::State::idle) {
          {
            std::lock_guard lock(stats_mutex_);
            ++stats_.closed_idle;
          }
          drop(connection, 0);  // nothing asked: nothing to answer
          break;
        }
        {
          std::lock_guard lock(stats_mutex_);
          ++(state == RequestParser::State::body ? stats_.timed_out_body : stats_.timed_out_head);
        }
        HttpResponse slow = error_response(408, state == RequestParser::State::body ? "the body did not arrive in time"
                                                                                     : "the request's headers did not arrive in time",
                                           "http.timeout");
        slow.close = true;
        respond(connection, std::move(slow), false, false);
        break;
      }
    }
  }
}

}  // namespace etl::plugins::http_server
