#pragma once
// What every PostgreSQL plugin shares: the connection keys (declared once, for any plugin's
// ConfigMap), the libpq conninfo built from them, and small libpq helpers.

#include <libpq-fe.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "etl/sdk.hpp"

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
  map.key("application_name", &PgConnection::application_name, "Shown in pg_stat_activity.");
}

/// A libpq conninfo string: each value single-quoted, with \ and ' escaped, so passwords with
/// spaces, quotes or '=' survive intact.
inline std::string connection_string(const std::map<std::string, std::string>& parameters) {
  std::string conninfo;
  for (const auto& [key, value] : parameters) {
    if (!conninfo.empty()) conninfo += ' ';
    conninfo += key;
    conninfo += "='";
    for (char c : value) {
      if (c == '\\' || c == '\'') conninfo += '\\';
      conninfo += c;
    }
    conninfo += '\'';
  }
  return conninfo;
}

/// The libpq parameters of a connection config (the password only when given).
inline std::map<std::string, std::string> connection_parameters(const PgConnection& config) {
  std::map<std::string, std::string> parameters{
      {"host", config.host},
      {"port", std::to_string(config.port)},
      {"user", config.user},
      {"dbname", config.dbname},
      {"sslmode", config.sslmode},
      {"connect_timeout", std::to_string(config.connect_timeout)},
      {"application_name", config.application_name},
  };
  if (!config.password.empty()) parameters["password"] = config.password;
  if (!config.sslrootcert.empty()) parameters["sslrootcert"] = config.sslrootcert;
  return parameters;
}

/// "host:port/dbname as user": where, for messages (never the password).
inline std::string describe(const PgConnection& config) {
  return config.host + ":" + std::to_string(config.port) + "/" + config.dbname + " as " + config.user;
}

struct PgResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

struct PgConnDeleter {
  void operator()(PGconn* connection) const noexcept { PQfinish(connection); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

/// A result's error field (PG_DIAG_SQLSTATE, PG_DIAG_MESSAGE_PRIMARY, ...), or empty.
inline std::string error_field(const PGresult* result, int code) {
  const char* text = PQresultErrorField(result, code);
  return text == nullptr ? std::string() : std::string(text);
}

/// libpq's messages span lines ("server closed the connection unexpectedly\n\tThis probably
/// means..."); reports and logs want one line.
inline std::string one_line(std::string_view message) {
  std::string line;
  for (const char c : message) {
    const bool blank = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (blank) {
      if (!line.empty() && line.back() != ' ') line += ' ';
    } else {
      line += c;
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

}  // namespace etl::plugins::postgres
