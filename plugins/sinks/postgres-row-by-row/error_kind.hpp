#pragma once
// What a PostgreSQL error means for the row that met it: the one table the sink's units share.

#include <string_view>

namespace etl::plugins::postgres {

enum class ErrorKind {
  row,         // the row itself is refused: retrying cannot help
  fatal,       // every row will meet it (no table, no privilege, read-only): stop the run
  retry_row,   // the row's transaction lost a race or a resource: the same row may succeed later
  connection,  // the connection or the server went away: reconnect, decide the rows in flight
  other,
};

inline ErrorKind classify_sqlstate(std::string_view sqlstate) {
  if (sqlstate.starts_with("23") || sqlstate.starts_with("22")) return ErrorKind::row;
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate.starts_with("53")) return ErrorKind::retry_row;
  // undefined table / column / schema / function, insufficient privilege, read-only transaction
  for (const std::string_view every_row : {"42P01", "42703", "3F000", "42883", "42501", "25006"}) {
    if (sqlstate == every_row) return ErrorKind::fatal;
  }
  if (sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return ErrorKind::connection;
  }
  return ErrorKind::other;
}

/// Connection failures that waiting cannot cure. libpq gives no SQLSTATE for a failed
/// connection, so the server's (English) message is all there is to go by; anything not
/// listed here is retried, which costs time but never a row.
inline bool is_permanent_connect_failure(std::string_view message) {
  for (const std::string_view marker :
       {"authentication failed", "no pg_hba.conf entry", "does not exist", "permission denied",
        "certificate verify failed", "server does not support SSL", "does not match host name",
        "root certificate file", "could not read certificate", "invalid connection option", "password is missing",
        "no password supplied"}) {
    if (message.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace etl::plugins::postgres
