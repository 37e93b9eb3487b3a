#pragma once
// Dispatcher: hands rows to the sink's connections under one budget of rows held (queued or
// in flight) shared by all of them.
//
// A row goes to the connection that already holds a row with the same key, so that a key's
// writes keep their order and equal rows are never undecided on two connections at once (the
// commit resolver relies on it); any other row goes to the connection holding the fewest. So
// a stalled connection holds only its own rows (its window and the rows of the same keys),
// and the others go on with the rest of the budget. push() blocks while the budget is spent:
// that is the sink's backpressure.

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "row_plan.hpp"

namespace etl::plugins::postgres {

class Dispatcher {
 public:
  Dispatcher(std::size_t connections, std::size_t budget) : queues_(connections), budget_(std::max<std::size_t>(budget, 1)) {}

  /// Queues the row for a connection; waits while the budget is spent. Returns nullopt, or
  /// why the row could not be taken (every connection gave up, or aborted); the row is then
  /// the caller's to report.
  std::optional<std::string> push(Row row) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return held_ < budget_ || aborted_ || live() == 0; });
    if (aborted_) return std::string("the sink was aborted");
    const std::size_t target = choose(row.key_hash);
    if (target == queues_.size()) return first_reason_.empty() ? std::string("no connection left") : first_reason_;
    auto& affinity = pending_[row.key_hash];
    affinity.connection = target;
    ++affinity.rows;
    ++held_;
    Queue& queue = queues_[target];
    ++queue.held;
    queue.rows.push_back(std::move(row));
    queue.ready.notify_one();
    return std::nullopt;
  }

  /// The next row for `connection`: waits for one when `wait`, until close() or abort().
  /// False when there is none (closed and drained, or aborted, or not waiting).
  bool take(std::size_t connection, Row& row, bool wait) {
    std::unique_lock lock(mutex_);
    Queue& queue = queues_[connection];
    if (wait) queue.ready.wait(lock, [&] { return !queue.rows.empty() || closed_ || aborted_; });
    if (aborted_ || queue.rows.empty()) return false;
    row = std::move(queue.rows.front());
    queue.rows.pop_front();
    return true;
  }

  /// A row `connection` took is decided (its outcome delivered): frees its place in the
  /// budget and, with the connection's last row of that key, the key's affinity.
  void settled(std::size_t connection, std::size_t key_hash) {
    std::lock_guard lock(mutex_);
    release(connection, key_hash);
  }

  /// `connection` gives up: it takes no more rows, and the rows queued for it are returned
  /// (released) for the caller to report. Rows it took and still holds are settled by it.
  std::vector<Row> retire(std::size_t connection, const std::string& reason) {
    std::lock_guard lock(mutex_);
    Queue& queue = queues_[connection];
    queue.retired = true;
    if (first_reason_.empty()) first_reason_ = reason;
    std::vector<Row> left(std::make_move_iterator(queue.rows.begin()), std::make_move_iterator(queue.rows.end()));
    queue.rows.clear();
    for (const auto& row : left) release(connection, row.key_hash);
    room_.notify_all();
    return left;
  }

  /// No more rows will be pushed: take() returns false once a queue is drained.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    for (auto& queue : queues_) queue.ready.notify_all();
  }
  void abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    for (auto& queue : queues_) queue.ready.notify_all();
    room_.notify_all();
  }

  bool all_retired() const {
    std::lock_guard lock(mutex_);
    return live() == 0;
  }
  /// Rows held by `connection` (queued, or taken and not settled).
  std::size_t held(std::size_t connection) const {
    std::lock_guard lock(mutex_);
    return queues_[connection].held;
  }
  std::size_t held() const {
    std::lock_guard lock(mutex_);
    return held_;
  }

 private:
  struct Queue {
    std::deque<Row> rows;
    std::size_t held = 0;  // queued + taken and not settled
    bool retired = false;
    std::condition_variable ready;
  };
  struct Affinity {
    std::size_t connection = 0;
    std::size_t rows = 0;
  };

  std::size_t live() const {
    return static_cast<std::size_t>(std::count_if(queues_.begin(), queues_.end(), [](const Queue& q) { return !q.retired; }));
  }

  /// The connection for a key: the one holding its rows, else the live one holding fewest
  /// (ties broken round-robin, so an idle start spreads the rows). queues_.size() when none.
  std::size_t choose(std::size_t key_hash) {
    if (const auto found = pending_.find(key_hash); found != pending_.end()) {
      // Even a retired connection keeps the key until its rows are settled: the key's order
      // and the resolver's premise matter more than the row (which is then not attempted).
      return queues_[found->second.connection].retired ? queues_.size() : found->second.connection;
    }
    std::size_t best = queues_.size();
    for (std::size_t step = 0; step < queues_.size(); ++step) {
      const std::size_t candidate = (cursor_ + step) % queues_.size();
      if (queues_[candidate].retired) continue;
      if (best == queues_.size() || queues_[candidate].held < queues_[best].held) best = candidate;
    }
    cursor_ = (cursor_ + 1) % queues_.size();
    return best;
  }

  void release(std::size_t connection, std::size_t key_hash) {
    Queue& queue = queues_[connection];
    if (queue.held > 0) --queue.held;
    if (held_ > 0) --held_;
    if (const auto found = pending_.find(key_hash); found != pending_.end() && --found->second.rows == 0) {
      pending_.erase(found);
    }
    room_.notify_one();
  }

  mutable std::mutex mutex_;
  std::condition_variable room_;
  std::vector<Queue> queues_;
  std::unordered_map<std::size_t, Affinity> pending_;
  std::size_t budget_;
  std::size_t held_ = 0;
  std::size_t cursor_ = 0;
  bool closed_ = false;
  bool aborted_ = false;
  std::string first_reason_;
};

}  // namespace etl::plugins::postgres
