// ConnectionPool: accepts HTTP connections on its own thread and serves them on a bounded set of
// threads. It replaces Poco's TCPServer for one reason: TCPServer::stop() clears the queue of
// connections accepted but not yet given a thread, and those clients see their connection
// closed without an answer. Here, stopping only closes the listener; every connection already
// accepted is still served, and the owner decides when the remaining idle ones end.
//
// On Linux a listener in an SO_REUSEPORT group that closes hands the connections still in its
// kernel backlog to another listener of the group when net.ipv4.tcp_migrate_req is 1 (without
// it they are reset): with that setting, a rolling restart on one port loses no connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>

namespace etl::plugins::http_server {

class ConnectionPool {
 public:
  ConnectionPool(Poco::Net::ServerSocket listener, Poco::Net::HTTPServerParams::Ptr params,
                 Poco::Net::HTTPRequestHandlerFactory::Ptr factory, std::size_t max_threads, std::size_t max_queued)
      : listener_(std::move(listener)),
        params_(std::move(params)),
        factory_(std::move(factory)),
        max_threads_(max_threads),
        max_queued_(max_queued) {}

  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  ~ConnectionPool() { close(); }

  void start() {
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  /// Closes the listener. Connections accepted already, queued or being served, go on.
  void stop_accepting() {
    accepting_ = false;
    if (acceptor_.joinable()) acceptor_.join();
  }

  /// Connections accepted and not yet closed (waiting for a thread, or being served).
  [[nodiscard]] std::size_t open_connections() const {
    std::lock_guard lock(mutex_);
    return queued_.size() + serving_.size();
  }

  /// Connections refused because max_queued were already waiting for a thread.
  [[nodiscard]] std::size_t refused_connections() const { return refused_; }

  /// Stops accepting, serves what is queued, ends idle keep-alive connections (their next read
  /// sees the end of the stream) and waits for every thread.
  void close() {
    stop_accepting();
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
      for (auto& socket : serving_) shutdown_quietly(socket);
      workers.swap(workers_);
    }
    work_arrived_.notify_all();
    for (auto& worker : workers) worker.join();
  }

 private:
  static void shutdown_quietly(Poco::Net::StreamSocket& socket) {
    try {
      socket.shutdownReceive();
    } catch (...) {  // closed by the peer already
    }
  }

  void accept_loop() {
    const Poco::Timespan poll_interval(0, 100'000);  // how long a stop waits for this loop
    while (accepting_) {
      try {
        if (!listener_.poll(poll_interval, Poco::Net::Socket::SELECT_READ)) continue;
        Poco::Net::StreamSocket socket = listener_.acceptConnection();
        socket.setNoDelay(true);
        enqueue(std::move(socket));
      } catch (const Poco::Exception&) {
        // A connection reset before it was accepted, or descriptors running out: go on; the
        // next poll tells.
      }
    }
    listener_.close();
  }

  void enqueue(Poco::Net::StreamSocket socket) {
    std::lock_guard lock(mutex_);
    if (queued_.size() >= max_queued_) {
      ++refused_;
      return;  // closed when `socket` goes: the client sees a refusal, as with a full backlog
    }
    queued_.push_back(std::move(socket));
    // Idle workers count as taken only once they wake: with more connections waiting than idle
    // workers, one more is started (a connection held open by keep-alive holds its worker).
    if (queued_.size() > idle_workers_ && workers_.size() < max_threads_) {
      workers_.emplace_back([this] { work(); });
    } else {
      work_arrived_.notify_one();
    }
  }

  void work() {
    std::unique_lock lock(mutex_);
    while (true) {
      ++idle_workers_;
      work_arrived_.wait(lock, [&] { return !queued_.empty() || closing_; });
      --idle_workers_;
      if (queued_.empty()) return;  // closing, and nothing left to serve
      serving_.push_back(std::move(queued_.front()));
      queued_.pop_front();
      const auto mine = std::prev(serving_.end());
      if (closing_) shutdown_quietly(*mine);  // answers what it has read, then ends
      lock.unlock();
      try {
        Poco::Net::HTTPServerConnection connection(*mine, params_, factory_);
        connection.run();
      } catch (...) {  // the connection's failure ends that connection only
      }
      lock.lock();
      serving_.erase(mine);
    }
  }

  Poco::Net::ServerSocket listener_;
  Poco::Net::HTTPServerParams::Ptr params_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr factory_;
  const std::size_t max_threads_;
  const std::size_t max_queued_;
  std::atomic<bool> accepting_{true};
  std::atomic<std::size_t> refused_{0};
  std::thread acceptor_;

  mutable std::mutex mutex_;  // everything below
  std::condition_variable work_arrived_;
  std::deque<Poco::Net::StreamSocket> queued_;
  std::list<Poco::Net::StreamSocket> serving_;
  std::vector<std::thread> workers_;
  std::size_t idle_workers_ = 0;
  bool closing_ = false;
};

}  // namespace etl::plugins::http_server
