#include "postgres/error_kind.hpp"

namespace etl::plugins::postgres {

ErrorKind classify_sqlstate(std::string_view sqlstate) {
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

bool is_permanent_connect_failure(std::string_view message) {
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
