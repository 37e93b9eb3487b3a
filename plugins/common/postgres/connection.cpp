#include "postgres/connection.hpp"

namespace etl::plugins::postgres {

std::string connection_string(const std::map<std::string, std::string>& parameters) {
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

std::map<std::string, std::string> connection_parameters(const PgConnection& config) {
  std::map<std::string, std::string> parameters{
      {"host", config.host},
      {"port", std::to_string(config.port)},
      {"user", config.user},
      {"dbname", config.dbname},
      {"sslmode", config.sslmode},
      {"connect_timeout", std::to_string(config.connect_timeout)},
      {"application_name", config.application_name},
      // A peer that vanished (a failover, a cable) is noticed within about 30 s even on an
      // idle connection, instead of the kernel's two hours.
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "4"},
  };
  if (!config.password.empty()) parameters["password"] = config.password;
  if (!config.sslrootcert.empty()) parameters["sslrootcert"] = config.sslrootcert;
  if (config.target_session_attrs != "any") parameters["target_session_attrs"] = config.target_session_attrs;
  return parameters;
}

std::string describe(const PgConnection& config) {
  return config.host + ":" + std::to_string(config.port) + "/" + config.dbname + " as " + config.user;
}

std::string error_field(const PGresult* result, int code) {
  const char* text = PQresultErrorField(result, code);
  return text == nullptr ? std::string() : std::string(text);
}

std::string one_line(std::string_view message) {
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

std::string result_error(const PGresult* result, PGconn* connection) {
  const std::string sqlstate = result != nullptr ? error_field(result, PG_DIAG_SQLSTATE) : std::string();
  std::string message = result != nullptr ? error_field(result, PG_DIAG_MESSAGE_PRIMARY) : std::string();
  if (message.empty() && connection != nullptr) message = one_line(PQerrorMessage(connection));
  if (message.empty()) message = "no answer";
  return sqlstate.empty() ? message : sqlstate + ": " + message;
}

}  // namespace etl::plugins::postgres
