#pragma once
// The server process behind a connection: what the commit resolver asks about once the
// connection is lost (commit_resolver.hpp), learned when the session opens (session.hpp).

#include <cstdint>
#include <string>

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
  /// Reached through a transaction pooler: the pid names a server connection the pooler may
  /// give to other clients, so it is never ended; only transaction ids speak for our rows.
  bool pooled = false;
};

}  // namespace etl::plugins::postgres
