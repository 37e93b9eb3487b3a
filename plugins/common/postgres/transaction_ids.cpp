#include "postgres/transaction_ids.hpp"

namespace etl::plugins::postgres {

std::optional<std::uint64_t> parse_transaction_id(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> widen_xmin(std::uint32_t xmin, std::uint64_t ceiling) {
  constexpr std::uint64_t kEpoch = std::uint64_t{1} << 32;
  std::uint64_t widened = (ceiling & ~(kEpoch - 1)) | xmin;
  if (widened >= ceiling) {
    if (widened < kEpoch) return std::nullopt;
    widened -= kEpoch;
  }
  return widened;
}

}  // namespace etl::plugins::postgres
