#pragma once
// A small LRU cache with a time to live: the lookup transform's memory of recent answers.

#include <chrono>
#include <list>
#include <optional>
#include <unordered_map>
#include <utility>

namespace etl::plugins::postgres_lookup {

template <class Key, class Value, class Clock = std::chrono::steady_clock>
class LruCache {
 public:
  /// `capacity` 0 keeps nothing; entries older than `ttl` are not returned.
  LruCache(std::size_t capacity, typename Clock::duration ttl) : capacity_(capacity), ttl_(ttl) {}

  /// The value for `key` if present and fresh; a hit becomes the most recently used.
  std::optional<Value> get(const Key& key, typename Clock::time_point now = Clock::now()) {
    const auto found = index_.find(key);
    if (found == index_.end()) return std::nullopt;
    if (now - found->second->stored > ttl_) {
      entries_.erase(found->second);
      index_.erase(found);
      return std::nullopt;
    }
    entries_.splice(entries_.begin(), entries_, found->second);
    return found->second->value;
  }

  void put(const Key& key, Value value, typename Clock::time_point now = Clock::now()) {
    if (capacity_ == 0) return;
    if (const auto found = index_.find(key); found != index_.end()) {
      found->second->value = std::move(value);
      found->second->stored = now;
      entries_.splice(entries_.begin(), entries_, found->second);
      return;
    }
    if (entries_.size() == capacity_) {
      index_.erase(entries_.back().key);
      entries_.pop_back();
    }
    entries_.push_front(Entry{key, std::move(value), now});
    index_.emplace(key, entries_.begin());
  }

  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    Key key;
    Value value;
    typename Clock::time_point stored;
  };
  std::size_t capacity_;
  typename Clock::duration ttl_;
  std::list<Entry> entries_;
  std::unordered_map<Key, typename std::list<Entry>::iterator> index_;
};

}  // namespace etl::plugins::postgres_lookup
