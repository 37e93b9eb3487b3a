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
//
// In a service a connection whose database cannot be reached is marked down: it takes no rows
// until it is up again (its queued rows are handed back to be refused at once), and a row that
// finds every connection down is refused at once too, so that no request waits on an outage.
// A barrier row (a truncate) is queued only once every held row is decided, and no row is
// queued while it is held: it is ordered against all rows, not just its key's.
// Holding (hold_while_down): a source that cannot send a row again (a replication stream, a
// followed folder) needs the opposite: queued rows stay where they are, and push() waits for a
// connection to be up — backpressure through the outage — until `give_up` says to stop.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "postgres/row_plan.hpp"

namespace etl::plugins::postgres {

class Dispatcher {
 public:
  Dispatcher(std::size_t connections, std::size_t budget) : queues_(connections), budget_(std::max<std::size_t>(budget, 1)) {}

  /// Rows wait through an outage instead of being refused (see the file comment); `give_up`
  /// (the run stops) ends the wait: the row is then refused as unavailable. Before any push().
  void hold_while_down(std::function<bool()> give_up) { give_up_ = std::move(give_up); }
  [[nodiscard]] bool holding() const noexcept { return static_cast<bool>(give_up_); }

  /// Why push() did not take a row.
  struct Refusal {
    std::string reason;
    /// Every connection that could take it is down (a service's outage), not gone for good.
    bool unavailable = false;
  };

  /// Queues the row for a connection; waits while the budget is spent. Returns nullopt, or
  /// why the row could not be taken (every connection gave up or is down, or aborted); the row
  /// is then the caller's to report.
  std::optional<Refusal> push(Row row);

  /// The next row for `connection`: waits for one when `wait`, until close() or abort().
  /// False when there is none (closed and drained, or aborted, or not waiting).
  bool take(std::size_t connection, Row& row, bool wait);

  /// A row `connection` took is decided (its outcome delivered): frees its place in the
  /// budget and, with the connection's last row of that key, the key's affinity.
  void settled(std::size_t connection, std::size_t key_hash) {
    std::lock_guard lock(mutex_);
    release(connection, key_hash);
  }

  /// `connection` gives up: it takes no more rows, and the rows queued for it are returned
  /// (released) for the caller to report. Rows it took and still holds are settled by it.
  std::vector<Row> retire(std::size_t connection, const std::string& reason);

  /// `connection` cannot reach the database (a service waits for it): it takes no rows until
  /// up(); the rows queued for it are returned (released) for the caller to refuse — or, when
  /// holding, stay queued for it (none returned).
  std::vector<Row> down(std::size_t connection, const std::string& reason);
  void up(std::size_t connection) {
    std::lock_guard lock(mutex_);
    queues_[connection].down = false;
    room_.notify_all();
  }

  /// Like take(), waiting at most `timeout` for a row (an idle connection looks at its socket
  /// in between).
  bool take_for(std::size_t connection, Row& row, std::chrono::milliseconds timeout);
  /// close() was called and `connection` has nothing queued.
  bool drained(std::size_t connection) const {
    std::lock_guard lock(mutex_);
    return (closed_ || aborted_) && queues_[connection].rows.empty();
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
    bool down = false;
    std::condition_variable ready;
  };
  struct Affinity {
    std::size_t connection = 0;
    std::size_t rows = 0;
  };

  std::function<bool()> give_up_;  // set: holding
  bool barrier_held_ = false;      // a barrier row is held (Row::barrier)

  std::size_t live() const {
    return static_cast<std::size_t>(std::count_if(queues_.begin(), queues_.end(), [](const Queue& q) { return !q.retired; }));
  }
  std::size_t up() const {
    return static_cast<std::size_t>(
        std::count_if(queues_.begin(), queues_.end(), [](const Queue& q) { return !q.retired && !q.down; }));
  }

  /// The connection for a key: the one holding its rows, else the live one holding fewest
  /// (ties broken round-robin, so an idle start spreads the rows). queues_.size() when none.
  std::size_t choose(std::size_t key_hash);

  void release(std::size_t connection, std::size_t key_hash);

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
  std::string down_reason_;
};

}  // namespace etl::plugins::postgres
