#pragma once
// SessionQueries: the commit resolver's questions (commit_resolver.hpp), asked over a live
// session: end a lost connection's server process, a transaction's status, lookups by value.
// Shared by the per-row and the batch sinks.

#include <optional>
#include <string>

#include "postgres/commit_resolver.hpp"
#include "postgres/row_plan.hpp"
#include "postgres/session.hpp"

namespace etl::plugins::postgres {

inline constexpr const char* kLookupStatement = "etl_lookup";

/// The resolver's questions, asked over a new session.
class SessionQueries final : public ResolverQueries {
 public:
  SessionQueries(PgSession& session, const RowPlan& plan, long settle_ms) : session_(session), plan_(plan), settle_ms_(settle_ms) {}

  std::string settle(const Backend& lost) override;
  std::optional<Snapshot> snapshot() override;
  std::string transaction_status(std::uint64_t xid) override;
  std::string prepare_lookup() override;
  Lookup lookup(const Row& row) override;

 private:
  PgSession& session_;
  const RowPlan& plan_;
  long settle_ms_;
};

}  // namespace etl::plugins::postgres
