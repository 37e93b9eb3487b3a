#pragma once
// What every PostgreSQL plugin shares: the connection keys (declared once, for any plugin's
// ConfigMap), the libpq conninfo built from them, and small libpq helpers.

#include <libpq-fe.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "etl/sdk/config.hpp"

namespace etl::plugins::postgres {

/// The connection keys. A plugin's Config derives from this and calls declare_connection().
struct PgConnection {
  std::string host;
  int port = 5432;
  std::string user;
  std::string password;
  std::string dbname;
  std::string sslmode = "require";
  std::string sslrootcert;
  int connect_timeout = 10;
  std::string application_name = "etl-host";
  /// libpq's target_session_attrs: with several hosts ("a,b"), which server a connection
  /// takes; read-write skips standbys, so every reconnect after a failover finds the primary.
  std::string target_session_attrs = "any";
  /// false: the server is reached through a transaction pooler (PgBouncer's pool_mode =
  /// transaction), which moves transactions between server connections: no named prepared
  /// statements, no session state (see session.hpp).
  bool prepared_statements = true;
};

template <class Config>
void declare_connection(sdk::ConfigMap<Config>& map) {
  map.key("host", &PgConnection::host, "Server host name or address.").required().min_length(1);
  map.key("port", &PgConnection::port, "Server port.").minimum(1).maximum(65535);
  map.key("user", &PgConnection::user, "User to connect as.").required().min_length(1);
  map.key("password", &PgConnection::password, "Password; prefer ${file:/run/secrets/...}.").secret();
  map.key("dbname", &PgConnection::dbname, "Database name.").required().min_length(1);
  map.key("sslmode", &PgConnection::sslmode, "libpq sslmode.")
      .one_of({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"});
  map.key("sslrootcert", &PgConnection::sslrootcert, "CA file for verify-ca / verify-full.");
  map.key("connect_timeout", &PgConnection::connect_timeout, "Seconds.").minimum(1);
  map.key("target_session_attrs", &PgConnection::target_session_attrs,
          "With several hosts (host: \"db1,db2\"), which server to take: read-write (or primary) skips standbys, so a reconnect after a failover finds the new primary.")
      .one_of({"any", "read-write", "read-only", "primary", "standby", "prefer-standby"});
  map.key("application_name", &PgConnection::application_name, "Shown in pg_stat_activity.");
  map.key("prepared_statements", &PgConnection::prepared_statements,
          "Use named prepared statements and session state. false when the server is reached through a transaction "
          "pooler (PgBouncer pool_mode = transaction): statements are then sent unnamed, and what needs a session of "
          "its own is refused with a clear error. Detected by itself when the pooler refuses a named statement.");
}

/// A libpq conninfo string: each value single-quoted, with \ and ' escaped, so passwords with
/// spaces, quotes or '=' survive intact.
std::string connection_string(const std::map<std::string, std::string>& parameters);

/// The libpq parameters of a connection config (the password only when given), with TCP
/// keepalives on so that a connection whose peer vanished is noticed without traffic.
std::map<std::string, std::string> connection_parameters(const PgConnection& config);

/// "host:port/dbname as user": where, for messages (never the password).
std::string describe(const PgConnection& config);

struct PgResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

struct PgConnDeleter {
  void operator()(PGconn* connection) const noexcept { PQfinish(connection); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

/// A result's error field (PG_DIAG_SQLSTATE, PG_DIAG_MESSAGE_PRIMARY, ...), or empty.
std::string error_field(const PGresult* result, int code);

/// libpq's messages span lines ("server closed the connection unexpectedly\n\tThis probably
/// means..."); reports and logs want one line.
std::string one_line(std::string_view message);

/// "SQLSTATE: message" of a failed result, or the connection's error when there is no result.
std::string result_error(const PGresult* result, PGconn* connection);

}  // namespace etl::plugins::postgres
