#pragma once
// Transaction ids: the 64-bit ids pg_current_xact_id() returns (xid8) and the 32-bit ones
// stored in a row's xmin.

#include <cstdint>
#include <optional>
#include <string_view>

#include <charconv>

namespace etl::plugins::postgres {

/// Parses the decimal text of an xid or xid8; nullopt for anything else.
std::optional<std::uint64_t> parse_transaction_id(std::string_view text);

/// The 64-bit id of a 32-bit xmin, given `ceiling`: an xid8 no older transaction reaches
/// (the xmax of a snapshot taken afterwards). xids wrap every 2^32; the epoch is the one
/// that puts the id just below the ceiling. nullopt for ids from before the first epoch.
std::optional<std::uint64_t> widen_xmin(std::uint32_t xmin, std::uint64_t ceiling);

}  // namespace etl::plugins::postgres
