#include "dispatcher.hpp"

namespace etl::plugins::postgres {

std::optional<Dispatcher::Refusal> Dispatcher::push(Row row) {
  std::unique_lock lock(mutex_);
  std::size_t target = queues_.size();
  for (;;) {
    // A barrier row waits for every held row to be decided; while it is held, no row joins it.
    room_.wait(lock, [&] {
      const bool room = held_ < budget_ && !barrier_held_ && (!row.barrier || held_ == 0);
      return room || aborted_ || live() == 0 || up() == 0;
    });
    if (aborted_) return Refusal{"the sink was aborted", false};
    target = choose(row.key_hash);
    if (target != queues_.size()) break;
    // Down (a service's outage, for a while) or retired (for good): the key's own connection,
    // or every connection when the key has none.
    const auto found = pending_.find(row.key_hash);
    const bool down = found != pending_.end() ? !queues_[found->second.connection].retired : live() != 0;
    if (!down) return Refusal{first_reason_.empty() ? std::string("no connection left") : first_reason_, false};
    if (!give_up_ || give_up_()) return Refusal{down_reason_.empty() ? std::string("no connection is up") : down_reason_, true};
    room_.wait_for(lock, std::chrono::milliseconds(200));  // holding: up() wakes it sooner
  }
  if (row.barrier) barrier_held_ = true;
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

bool Dispatcher::take(std::size_t connection, Row& row, bool wait) {
  std::unique_lock lock(mutex_);
  Queue& queue = queues_[connection];
  if (wait) queue.ready.wait(lock, [&] { return !queue.rows.empty() || closed_ || aborted_; });
  if (aborted_ || queue.rows.empty()) return false;
  row = std::move(queue.rows.front());
  queue.rows.pop_front();
  return true;
}

std::vector<Row> Dispatcher::retire(std::size_t connection, const std::string& reason) {
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

std::vector<Row> Dispatcher::down(std::size_t connection, const std::string& reason) {
  std::lock_guard lock(mutex_);
  Queue& queue = queues_[connection];
  queue.down = true;
  down_reason_ = reason;
  if (give_up_) return {};  // holding: they wait for this connection, in their order
  std::vector<Row> left(std::make_move_iterator(queue.rows.begin()), std::make_move_iterator(queue.rows.end()));
  queue.rows.clear();
  for (const auto& row : left) release(connection, row.key_hash);
  room_.notify_all();
  return left;
}

bool Dispatcher::take_for(std::size_t connection, Row& row, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  Queue& queue = queues_[connection];
  queue.ready.wait_for(lock, timeout, [&] { return !queue.rows.empty() || closed_ || aborted_; });
  if (aborted_ || queue.rows.empty()) return false;
  row = std::move(queue.rows.front());
  queue.rows.pop_front();
  return true;
}

std::size_t Dispatcher::choose(std::size_t key_hash) {
  if (const auto found = pending_.find(key_hash); found != pending_.end()) {
    // Even a retired connection keeps the key until its rows are settled: the key's order
    // and the resolver's premise matter more than the row (which is then not attempted).
    const Queue& holder = queues_[found->second.connection];
    return holder.retired || holder.down ? queues_.size() : found->second.connection;
  }
  std::size_t best = queues_.size();
  for (std::size_t step = 0; step < queues_.size(); ++step) {
    const std::size_t candidate = (cursor_ + step) % queues_.size();
    if (queues_[candidate].retired || queues_[candidate].down) continue;
    if (best == queues_.size() || queues_[candidate].held < queues_[best].held) best = candidate;
  }
  cursor_ = (cursor_ + 1) % queues_.size();
  return best;
}

void Dispatcher::release(std::size_t connection, std::size_t key_hash) {
  Queue& queue = queues_[connection];
  if (queue.held > 0) --queue.held;
  if (held_ > 0) --held_;
  if (held_ == 0 && barrier_held_) {
    barrier_held_ = false;  // nothing but the barrier was held: it is decided
    room_.notify_all();
  }
  if (const auto found = pending_.find(key_hash); found != pending_.end() && --found->second.rows == 0) {
    pending_.erase(found);
  }
  room_.notify_one();
}

}  // namespace etl::plugins::postgres
