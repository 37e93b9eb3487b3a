#include "postgres/session_queries.hpp"

#include <algorithm>
#include <chrono>
#include <string_view>
#include <thread>

#include "postgres/error_kind.hpp"
#include "postgres/transaction_ids.hpp"

namespace etl::plugins::postgres {

std::string SessionQueries::settle(const Backend& lost) {
  if (lost.pooled) {
    // A pooler's server connection serves other clients too: it is never ended, and so
    // nothing proves the lost transactions cannot still commit.
    return "the connection went through a transaction pooler, whose server connections cannot be told apart";
  }
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

std::optional<ResolverQueries::Snapshot> SessionQueries::snapshot() {
  PgResult result = session_.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text, pg_postmaster_start_time()::text");
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK || PQntuples(result.get()) != 1) return std::nullopt;
  return Snapshot{parse_transaction_id(PQgetvalue(result.get(), 0, 0)).value_or(0), PQgetvalue(result.get(), 0, 1)};
}

std::string SessionQueries::transaction_status(std::uint64_t xid) {
  const std::string text = std::to_string(xid);
  PgResult status = session_.execute("SELECT pg_xact_status($1::xid8)", {text.c_str()});
  return PQresultStatus(status.get()) == PGRES_TUPLES_OK && !PQgetisnull(status.get(), 0, 0) ? PQgetvalue(status.get(), 0, 0)
                                                                                              : "";
}

std::string SessionQueries::prepare_lookup() {
  PgResult prepared = session_.prepare(kLookupStatement, plan_.lookup_sql(), static_cast<int>(plan_.columns().size()));
  if (PQresultStatus(prepared.get()) == PGRES_COMMAND_OK) return {};
  return "its answer was lost and looking it up failed: " + error_field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY);
}

ResolverQueries::Lookup SessionQueries::lookup(const Row& row) {
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

}  // namespace etl::plugins::postgres
