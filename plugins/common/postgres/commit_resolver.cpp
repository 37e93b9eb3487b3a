#include "postgres/commit_resolver.hpp"

namespace etl::plugins::postgres {

Resolution resolve_lost_rows(const ResolverPolicy& policy, ResolverQueries& ask, const Backend& lost,
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

}  // namespace etl::plugins::postgres
