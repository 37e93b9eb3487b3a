#include "hostile_provider.hpp"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace etl::testing {

HostileProvider::HostileProvider(Mode mode, std::chrono::milliseconds interval) : mode_(mode), interval_(interval) {
  listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0) throw std::runtime_error(std::string("hostile provider: socket: ") + std::strerror(errno));
  const int yes = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listener_, 64) != 0) {
    throw std::runtime_error(std::string("hostile provider: bind/listen: ") + std::strerror(errno));
  }
  socklen_t length = sizeof address;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HostileProvider::~HostileProvider() {
  quit_ = true;
  ::shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  ::close(listener_);
  {
    std::lock_guard lock(mutex_);
    for (const int client : clients_) ::shutdown(client, SHUT_RDWR);
  }
  for (auto& handler : handlers_) handler.join();
}

std::string HostileProvider::url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/tokens"; }

std::vector<std::string> HostileProvider::complete_lines_sent() const {
  std::lock_guard lock(mutex_);
  return sent_;
}

std::string HostileProvider::token(std::size_t index) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
  std::string text = "hostile";
  std::size_t value = index * 2654435761u + 12345;
  while (text.size() < 22) {
    text += kAlphabet[value % 63];
    value = value / 63 + index + text.size();
  }
  return text;
}

void HostileProvider::accept_loop() {
  while (!quit_) {
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (quit_) return;
      continue;
    }
    std::lock_guard lock(mutex_);
    clients_.push_back(client);
    handlers_.emplace_back([this, client] { serve(client); });
  }
}

bool HostileProvider::send_all(int client, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(client, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

/// Waits one interval; false when the provider shuts down.
bool HostileProvider::pause() const {
  const auto until = std::chrono::steady_clock::now() + interval_;
  while (std::chrono::steady_clock::now() < until) {
    if (quit_) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return !quit_;
}

void HostileProvider::serve(int client) {
  // Read the request head (and whatever body came with it); the count is the size= parameter.
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536 && !quit_) {
    pollfd readable{client, POLLIN, 0};
    if (::poll(&readable, 1, 100) <= 0) continue;
    const ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    request.append(buffer, static_cast<std::size_t>(n));
  }
  ++requests_;
  std::size_t asked = 1;
  if (const auto at = request.find("size="); at != std::string::npos) asked = std::stoul(request.substr(at + 5));
  auto line = [&] {
    const std::string text = token(next_line_++);
    return text;
  };
  auto record_sent = [&](const std::string& text) {
    std::lock_guard lock(mutex_);
    sent_.push_back(text);
  };
  const std::string plain = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n";
  switch (mode_) {
    case Mode::silent_after_headers:
      if (send_all(client, plain + "Content-Length: 10000\r\n\r\n")) {
        while (pause()) {
        }
      }
      break;
    case Mode::trickled_headers: {
      const std::string head = plain + "X-Padding: ";
      for (std::size_t i = 0; !quit_; ++i) {
        if (!send_all(client, std::string(1, i < head.size() ? head[i] : 'x')) || !pause()) break;
      }
      break;
    }
    case Mode::trickled_body: {
      if (!send_all(client, plain + "\r\n")) break;
      bool open = true;
      for (std::size_t i = 0; i < asked && open; ++i) {
        const std::string text = line() + "\n";
        for (const char c : text) {
          if (!send_all(client, std::string(1, c)) || !pause()) {
            open = false;
            break;
          }
        }
        if (open) record_sent(text.substr(0, text.size() - 1));
      }
      break;
    }
    case Mode::truncated: {
      std::string body;
      std::vector<std::string> complete;
      for (std::size_t i = 0; i + 1 < asked; ++i) {
        complete.push_back(line());
        body += complete.back() + "\n";
      }
      body += line().substr(0, 11);  // half of the last line, never its end
      const std::size_t promised = asked * 23;
      if (send_all(client, plain + "Content-Length: " + std::to_string(promised) + "\r\n\r\n" + body)) {
        for (const auto& text : complete) record_sent(text);
      }
      break;
    }
    case Mode::endless_body: {
      if (!send_all(client, plain + "\r\n")) break;
      while (!quit_) {
        std::string chunk;
        std::vector<std::string> lines;
        for (int i = 0; i < 100; ++i) {
          lines.push_back(line());
          chunk += lines.back() + "\n";
        }
        if (!send_all(client, chunk)) break;
        for (const auto& text : lines) record_sent(text);
      }
      break;
    }
  }
  {
    std::lock_guard lock(mutex_);
    for (auto& c : clients_) {
      if (c == client) c = -1;
    }
  }
  ::shutdown(client, SHUT_RDWR);
  ::close(client);
}

}  // namespace etl::testing
