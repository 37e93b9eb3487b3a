#pragma once
// SessionQueries: the commit resolver's questions (commit_resolver.hpp), asked over a live
// session: end a lost connection's server process, a transaction's status, lookups by value.
// Shared by the per-row and the batch writers.

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "commit_resolver.hpp"
#include "error_kind.hpp"
#include "pg_session.hpp"
#include "row_plan.hpp"

namespace etl::plugins::postgres {

inline constexpr const char* kLookupStatement = "etl_lookup";

/// The resolver's questions, asked over a new session.
class SessionQueries final : public ResolverQueries {
 public:
  SessionQueries(PgSession& session, const RowPlan& plan, long settle_ms) : session_(session), plan_(plan), settle_ms_(settle_ms) {}

  std::string settle(const Backend& lost) override {
    // The server waits up to settle_timeout for the process to end: so may we, whatever
    // answer_timeout says.
    const long answer_timeout = session_.deadlines().answer_timeout_ms;
    session_.deadlines().answer_timeout_ms = std::max(answer_timeout, settle_ms_ + 5000);
    struct Restore {
      PgSession& session;
      long value;
      ~Restore() { session.deadlines().answer_timeout_ms = value; }
    } restore{session_, answer_timeout};
    const std::string pid = std::to_string(lost.pid);
    const std::string timeout = std::to_string(settle_ms_);
    PgResult ended = session_.execute(
        "SELECT pg_terminate_backend(pid, $3::bigint) FROM pg_stat_activity WHERE pid = $1::int AND backend_start = $2::timestamptz",
        {pid.c_str(), lost.started.c_str(), timeout.c_str()});
    if (PQresultStatus(ended.get()) == PGRES_TUPLES_OK &&
        (PQntuples(ended.get()) == 0 || std::string_view(PQgetvalue(ended.get(), 0, 0)) == "t")) {
      return {};
    }
    // Not allowed to end it (another role's process), or it did not end in time, or it ended
    // by itself meanwhile: wait for it to be gone.
    const std::string refusal = PQresultStatus(ended.get()) == PGRES_TUPLES_OK
                                    ? std::string("it did not end within settle_timeout")
                                    : error_field(ended.get(), PG_DIAG_MESSAGE_PRIMARY);
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(settle_ms_);
    while (true) {
      PgResult alive = session_.execute(
          "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int AND backend_start = $2::timestamptz",
          {pid.c_str(), lost.started.c_str()});
      if (PQresultStatus(alive.get()) == PGRES_TUPLES_OK && PQntuples(alive.get()) == 0) return {};
      if (std::chrono::steady_clock::now() >= until) {
        return "server process " + pid + " still runs and cannot be ended (" + refusal + ")";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }

  std::optional<Snapshot> snapshot() override {
    PgResult result = session_.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text, pg_postmaster_start_time()::text");
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK || PQntuples(result.get()) != 1) return std::nullopt;
    return Snapshot{parse_transaction_id(PQgetvalue(result.get(), 0, 0)).value_or(0), PQgetvalue(result.get(), 0, 1)};
  }

  std::string transaction_status(std::uint64_t xid) override {
    const std::string text = std::to_string(xid);
    PgResult status = session_.execute("SELECT pg_xact_status($1::xid8)", {text.c_str()});
    return PQresultStatus(status.get()) == PGRES_TUPLES_OK && !PQgetisnull(status.get(), 0, 0) ? PQgetvalue(status.get(), 0, 0)
                                                                                                : "";
  }

  std::string prepare_lookup() override {
    PgResult prepared = session_.prepare(kLookupStatement, plan_.lookup_sql(), static_cast<int>(plan_.columns().size()));
    if (PQresultStatus(prepared.get()) == PGRES_COMMAND_OK) return {};
    return "its answer was lost and looking it up failed: " + error_field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY);
  }

  Lookup lookup(const Row& row) override {
    PgResult found = session_.execute_prepared(kLookupStatement, RowPlan::column_values(row));
    Lookup out;
    if (PQresultStatus(found.get()) != PGRES_TUPLES_OK) {
      const bool incomparable = classify_sqlstate(error_field(found.get(), PG_DIAG_SQLSTATE)) == ErrorKind::row;
      out.kind = incomparable ? Lookup::Kind::incomparable : Lookup::Kind::failed;
      out.error = error_field(found.get(), PG_DIAG_MESSAGE_PRIMARY);
      return out;
    }
    for (int i = 0; i < PQntuples(found.get()); ++i) {
      if (const auto xmin = parse_transaction_id(PQgetvalue(found.get(), i, 0))) out.xmins.push_back(*xmin);
    }
    return out;
  }

 private:
  PgSession& session_;
  const RowPlan& plan_;
  long settle_ms_;
};

}  // namespace etl::plugins::postgres
