// The lookup cache: least recently used goes first, stale entries are not returned.
#include <gtest/gtest.h>

#include <string>

#include "lru_cache.hpp"

namespace etl::plugins::postgres_lookup {
namespace {

using Clock = std::chrono::steady_clock;

TEST(LruCache, EvictsTheLeastRecentlyUsed) {
  LruCache<std::string, int> cache(2, std::chrono::hours(1));
  const auto now = Clock::now();
  cache.put("a", 1, now);
  cache.put("b", 2, now);
  EXPECT_EQ(cache.get("a", now), 1);  // a is now the most recent
  cache.put("c", 3, now);             // so b goes
  EXPECT_EQ(cache.get("b", now), std::nullopt);
  EXPECT_EQ(cache.get("a", now), 1);
  EXPECT_EQ(cache.get("c", now), 3);
  EXPECT_EQ(cache.size(), 2u);
  cache.put("a", 10, now);  // replaced, not added
  EXPECT_EQ(cache.get("a", now), 10);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(LruCache, StaleEntriesAreForgotten) {
  LruCache<std::string, int> cache(10, std::chrono::seconds(60));
  const auto now = Clock::now();
  cache.put("a", 1, now);
  EXPECT_EQ(cache.get("a", now + std::chrono::seconds(60)), 1);
  EXPECT_EQ(cache.get("a", now + std::chrono::seconds(61)), std::nullopt);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(LruCache, CapacityZeroKeepsNothing) {
  LruCache<std::string, int> cache(0, std::chrono::hours(1));
  cache.put("a", 1);
  EXPECT_EQ(cache.get("a"), std::nullopt);
}

}  // namespace
}  // namespace etl::plugins::postgres_lookup
