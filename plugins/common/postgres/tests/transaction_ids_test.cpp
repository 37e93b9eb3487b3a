#include <gtest/gtest.h>

#include "postgres/transaction_ids.hpp"

namespace etl::plugins::postgres {
namespace {

constexpr std::uint64_t kEpoch = std::uint64_t{1} << 32;

TEST(TransactionIds, ParsesDecimalIdsOnly) {
  EXPECT_EQ(parse_transaction_id("748"), 748u);
  EXPECT_EQ(parse_transaction_id("18446744073709551615"), 18446744073709551615ull);
  EXPECT_FALSE(parse_transaction_id(""));
  EXPECT_FALSE(parse_transaction_id("12a"));
  EXPECT_FALSE(parse_transaction_id("-1"));
  EXPECT_FALSE(parse_transaction_id("18446744073709551616"));
}

TEST(TransactionIds, WidensAnXminInTheCeilingsEpoch) {
  EXPECT_EQ(widen_xmin(900, 1000), 900u);
  EXPECT_EQ(widen_xmin(900, 3 * kEpoch + 1000), 3 * kEpoch + 900);
}

TEST(TransactionIds, WidensAnXminFromJustBeforeAWraparound) {
  // The ceiling has wrapped into epoch 3, the row was inserted at the end of epoch 2.
  EXPECT_EQ(widen_xmin(0xfffffff0u, 3 * kEpoch + 5), 2 * kEpoch + 0xfffffff0u);
}

TEST(TransactionIds, AnXminAtOrAboveTheCeilingInEpochZeroIsNotOurs) {
  EXPECT_FALSE(widen_xmin(1000, 1000));
  EXPECT_FALSE(widen_xmin(5000, 1000));
}

}  // namespace
}  // namespace etl::plugins::postgres
