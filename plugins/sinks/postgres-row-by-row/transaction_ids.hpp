#pragma once
// Transaction ids: the 64-bit ids pg_current_xact_id() returns (xid8) and the 32-bit ones
// stored in a row's xmin.

#include <cstdint>
#include <optional>
#include <string_view>

#include <charconv>

namespace etl::plugins::postgres {

/// Parses the decimal text of an xid or xid8; nullopt for anything else.
inline std::optional<std::uint64_t> parse_transaction_id(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

/// The 64-bit id of a 32-bit xmin, given `ceiling`: an xid8 no older transaction reaches
/// (the xmax of a snapshot taken afterwards). xids wrap every 2^32; the epoch is the one
/// that puts the id just below the ceiling. nullopt for ids from before the first epoch.
inline std::optional<std::uint64_t> widen_xmin(std::uint32_t xmin, std::uint64_t ceiling) {
  constexpr std::uint64_t kEpoch = std::uint64_t{1} << 32;
  std::uint64_t widened = (ceiling & ~(kEpoch - 1)) | xmin;
  if (widened >= ceiling) {
    if (widened < kEpoch) return std::nullopt;
    widened -= kEpoch;
  }
  return widened;
}

}  // namespace etl::plugins::postgres
