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

ErrorKind classify_sqlstate(std::string_view sqlstate);

/// Connection failures that waiting cannot cure. libpq gives no SQLSTATE for a failed
/// connection, so the server's (English) message is all there is to go by; anything not
/// listed here is retried, which costs time but never a row.
bool is_permanent_connect_failure(std::string_view message);

}  // namespace etl::plugins::postgres
