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
#include "row_plan.hpp"
#include "sql_text.hpp"
#include "transaction_ids.hpp"

namespace etl::plugins::postgres {

/// The server process behind a connection: what to ask about once the connection is lost.
struct Backend {
  int pid = 0;
  /// backend_start: a pid alone may be reused after a server restart.
  std::string started;
  /// Every transaction id this process assigned to a row not yet decided is at least this.
  std::uint64_t floor = 0;
  /// pg_postmaster_start_time(): after a crash restart, transaction ids that never reached
  /// the WAL are handed out again, so an id's status then no longer speaks for our row.
  std::string server_started;
};

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

inline Resolution resolve_lost_rows(const ResolverPolicy& policy, ResolverQueries& ask, const Backend& lost,
                                    std::span<const SentRow> in_flight) {
  Resolution out;
  auto unknown_all = [&](const std::string& reason) {
    for (std::size_t i = 0; i < in_flight.size(); ++i) out.decided.push_back({i, sdk::Outcome::commit_unknown(reason), {}});
  };
  if (const std::string unsettled = ask.settle(lost); !unsettled.empty()) {
    unknown_all(unsettled);
    return out;
  }
  if (policy.mode == WriteMode::statement && !policy.idempotent) {
    unknown_all("its answer was lost with its connection, and a statement not declared idempotent cannot be replayed");
    return out;
  }
  if (policy.mode != WriteMode::insert) {
    // upsert, update, delete and idempotent statements set a row to given values: with the old
    // server process gone (nothing of it can commit any more), replaying the statement gives
    // the row its outcome, whether the first try committed or not.
    for (std::size_t i = 0; i < in_flight.size(); ++i) out.again.push_back(i);
    out.replay = true;
    return out;
  }
  const auto snapshot = ask.snapshot();
  const std::uint64_t ceiling = snapshot ? snapshot->ceiling : 0;
  out.restarted = snapshot && lost.server_started != snapshot->server_started;
  std::string lookup_problem = policy.lookup_unanswered ? std::string() : "its answer was lost (lookup_unanswered is off)";
  bool lookup_ready = false;
  std::uint64_t floor = lost.floor;
  std::set<std::uint64_t> claimed;
  for (std::size_t index = 0; index < in_flight.size(); ++index) {
    const SentRow& sent = in_flight[index];
    if (sent.xid && !out.restarted) {
      floor = std::max(floor, *sent.xid + 1);
      const std::string xid = std::to_string(*sent.xid);
      const std::string state = ask.transaction_status(*sent.xid);
      if (state == "committed") {
        out.decided.push_back({index, sdk::Outcome::ok(), sent.xid});
      } else if (state == "aborted") {
        out.again.push_back(index);
      } else {
        out.decided.push_back(
            {index, sdk::Outcome::commit_unknown("the server reports transaction " + xid + " as " +
                                                 (state.empty() ? std::string("unknown") : state)), {}});
      }
      continue;
    }
    if (lookup_problem.empty() && !lookup_ready) {
      lookup_problem = ask.prepare_lookup();
      lookup_ready = lookup_problem.empty();
    }
    if (!lookup_problem.empty() || ceiling == 0) {
      out.decided.push_back(
          {index, sdk::Outcome::commit_unknown(lookup_problem.empty() ? "no transaction snapshot" : lookup_problem), {}});
      continue;
    }
    if (sent.row.xid_floor == kUntrustedFloor) {
      out.decided.push_back({index, sdk::Outcome::commit_unknown(
                                        "its answer was lost, and an equal row's commit outcome is unknown, so a stored "
                                        "copy cannot be told to be this row's"), {}});
      continue;
    }
    const auto found = ask.lookup(sent.row);
    if (found.kind == ResolverQueries::Lookup::Kind::incomparable) {
      out.again.push_back(index);  // the values cannot be stored: sending again gives the row's own error
      continue;
    }
    if (found.kind == ResolverQueries::Lookup::Kind::failed) {
      out.decided.push_back(
          {index, sdk::Outcome::commit_unknown("its answer was lost and looking it up failed: " + found.error), {}});
      continue;
    }
    // A stored copy inserted by a transaction this process started after its last known one
    // (and after every equal row decided before this one was sent), and not claimed by an
    // earlier row, is this row's: equal rows undecided at once all travel on one connection,
    // in order, so no other connection of this run can have stored it.
    const std::uint64_t row_floor = std::max(floor, sent.row.xid_floor);
    std::optional<std::uint64_t> mine;
    for (const std::uint64_t xmin : found.xmins) {
      if (xmin > 0xffffffffULL) continue;
      const auto xid = widen_xmin(static_cast<std::uint32_t>(xmin), ceiling);
      if (xid && *xid >= row_floor && *xid < ceiling && !claimed.contains(*xid) && (!mine || *xid < *mine)) mine = xid;
    }
    if (mine) {
      claimed.insert(*mine);
      floor = std::max(floor, *mine + 1);
      out.decided.push_back({index, sdk::Outcome::ok(), mine});
    } else {
      out.again.push_back(index);
    }
  }
  return out;
}

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
