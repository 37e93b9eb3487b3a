#pragma once
// The commit resolver: decides the rows that were in flight on a lost connection. Pure
// decision logic over a few questions to the server (ResolverQueries), so that every case can
// be tested over a table of answers (tests/commit_resolver_test.cpp); the sink asks the real
// questions over a new connection.
//
// Each row is decided committed (ok), not committed (sent again) or undecidable (failed,
// commit outcome unknown). Nothing is decided before every question has been answered: a
// question that throws (the new connection lost too) leaves every row to be decided again.

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "etl/sdk.hpp"
#include "postgres/backend.hpp"
#include "postgres/row_plan.hpp"
#include "postgres/sql_text.hpp"
#include "postgres/transaction_ids.hpp"

namespace etl::plugins::postgres {

/// A row sent on a connection and not yet decided.
struct SentRow {
  Row row;
  /// The row's transaction id, once its statement's result arrived; its commit may still be unanswered.
  std::optional<std::uint64_t> xid;
};

/// The questions the resolver asks. Each may throw (a lost connection): the resolution then
/// decides nothing.
class ResolverQueries {
 public:
  virtual ~ResolverQueries() = default;
  /// Ends the lost server process if it still runs, so that nothing of it can commit while
  /// its rows are decided. Empty, or why it could not.
  virtual std::string settle(const Backend& lost) = 0;
  struct Snapshot {
    std::uint64_t ceiling = 0;   // xmax of a snapshot taken now: no older transaction reaches it
    std::string server_started;  // pg_postmaster_start_time()
  };
  virtual std::optional<Snapshot> snapshot() = 0;
  /// pg_xact_status: "committed", "aborted", "in progress", or "" when the server cannot say.
  virtual std::string transaction_status(std::uint64_t xid) = 0;
  /// Readies the lookup of stored copies by value; empty, or why it cannot be used.
  virtual std::string prepare_lookup() = 0;
  struct Lookup {
    enum class Kind { found, incomparable, failed } kind = Kind::found;
    std::vector<std::uint64_t> xmins;  // found: the xmin of each stored copy (32-bit values)
    std::string error;                 // failed: the server's message
  };
  /// The stored copies of the row's values (incomparable: the values cannot even be compared
  /// with the columns, so the row cannot have been stored).
  virtual Lookup lookup(const Row& row) = 0;
};

struct ResolverPolicy {
  WriteMode mode = WriteMode::insert;
  bool idempotent = false;         // statement mode: replaying is safe
  bool lookup_unanswered = true;   // insert: look up rows whose statement result never arrived
};

/// xid_floor value of a row whose equal predecessor's commit is unknown: no stored copy can
/// then be told to be this row's.
inline constexpr std::uint64_t kUntrustedFloor = std::numeric_limits<std::uint64_t>::max();

struct Resolution {
  struct Decision {
    std::size_t index = 0;  // into in_flight
    sdk::Outcome outcome;
    std::optional<std::uint64_t> xid;  // ok: the transaction that stored the row, when known
  };
  std::vector<Decision> decided;
  std::vector<std::size_t> again;  // not committed: to send again, in this order
  bool replay = false;             // `again` are replays of idempotent statements (maybe committed)
  bool restarted = false;          // the server restarted since: ids did not count, lookups did

  std::size_t committed() const {
    std::size_t n = 0;
    for (const auto& d : decided) n += d.outcome.status == sdk::Status::ok;
    return n;
  }
  std::size_t unknown() const { return decided.size() - committed(); }
};

Resolution resolve_lost_rows(const ResolverPolicy& policy, ResolverQueries& ask, const Backend& lost,
                                    std::span<const SentRow> in_flight);

/// insert mode: per bucket of key hashes, the transaction ids below which stored copies belong
/// to equal rows already decided. A row takes its bucket's floor when it is dispatched; a row
/// decided ok raises it past its transaction, one decided commit-unknown makes it untrusted
/// (no later lookup in the bucket can claim a copy). Buckets are shared by hash collisions,
/// which only makes a floor higher than needed for an unrelated row: that row's own copy still
/// has a higher id (its transaction began after the floor's was decided).
class EqualRowFloors {
 public:
  std::uint64_t floor(std::size_t key_hash) const { return buckets_[key_hash % kBuckets].load(std::memory_order_acquire); }
  void committed(std::size_t key_hash, std::uint64_t xid) {
    auto& bucket = buckets_[key_hash % kBuckets];
    std::uint64_t seen = bucket.load(std::memory_order_relaxed);
    while (seen != kUntrustedFloor && seen < xid + 1 &&
           !bucket.compare_exchange_weak(seen, xid + 1, std::memory_order_acq_rel)) {
    }
  }
  void untrusted(std::size_t key_hash) { buckets_[key_hash % kBuckets].store(kUntrustedFloor, std::memory_order_release); }

 private:
  static constexpr std::size_t kBuckets = 1 << 16;
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
};

}  // namespace etl::plugins::postgres
