#pragma once
// postgres-row-by-row's config: declared once, from which the schema, the parsing and the
// README's table come (see plugins/README.md).

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "etl/sdk.hpp"
#include "etl/sdk/retry.hpp"
#include "postgres/pg_connection.hpp"

namespace etl::plugins::postgres {

/// The config as declared (see config_map()).
struct Config : PgConnection {
  std::string schema;
  std::string table;
  std::map<std::string, std::string> columns;
  std::map<std::string, std::string> casts;
  std::string missing_field = "reject";
  std::map<std::string, std::string> defaults;
  std::map<std::string, std::string> constants;
  std::string mode = "insert";
  std::vector<std::string> conflict_columns;
  std::optional<std::vector<std::string>> update_columns;
  std::string where;
  std::vector<std::string> key_columns;
  std::string statement;
  std::map<std::string, std::string> statements;
  std::string statement_field;
  bool idempotent = false;
  std::string commit = "per_row";
  int batch_rows = 4000;
  int batch_bytes = 4 << 20;
  bool guess_failures = true;
  bool pipeline = true;
  int connections = 16;
  int max_in_flight = 64;
  sdk::RetryPolicy retry;
  bool lookup_unanswered = true;
  double answer_timeout = 60;
  double settle_timeout = 10;
};

inline sdk::ConfigMap<Config> declare_config() {
  sdk::ConfigMap<Config> map;
  declare_connection(map);
  map.key("schema", &Config::schema, "Schema of the table; empty: the search_path decides.");
  map.key("table", &Config::table, "Table to write to (every mode but statement).");
  map.key("columns", &Config::columns,
          "Record field -> column, e.g. {\"token\": \"data\"} (every mode but statement, which names fields itself).")
      .schema({{"additionalProperties", {{"type", "string"}, {"minLength", 1}}}});
  map.key("casts", &Config::casts,
          "Column -> SQL type its value is cast to in the statement, e.g. {\"dob\": \"date\"} ($1::date): for "
          "values PostgreSQL would not take as they come, or to choose an overloaded function.")
      .schema({{"additionalProperties", {{"type", "string"}, {"pattern", "^[A-Za-z_][A-Za-z0-9_ .]*(\\([0-9, ]+\\))?(\\[\\])?$"}}}});
  map.key("missing_field", &Config::missing_field,
          "A record without a mapped field (and no entry in defaults): reject it (code missing_field), or write NULL.")
      .one_of({"reject", "null"});
  map.key("defaults", &Config::defaults,
          "Record field -> the value written when a record lacks the field (as text, which PostgreSQL reads as the "
          "column's type).")
      .schema({{"additionalProperties", {{"type", "string"}}}});
  map.key("constants", &Config::constants,
          "Column -> a value written in every row, e.g. {\"source\": \"goquiz\"}; in statement mode a named "
          "parameter ($source) with that value.")
      .schema({{"additionalProperties", {{"type", "string"}}}});
  map.key("mode", &Config::mode,
          "insert; upsert (INSERT ... ON CONFLICT (conflict_columns) DO UPDATE); update or delete by key_columns (no row "
          "with the key: rejected, code not_found). Each record is still its own transaction.")
      .one_of({"insert", "upsert", "update", "delete", "statement"});
  map.key("conflict_columns", &Config::conflict_columns, "upsert: the columns of the unique constraint to meet.");
  map.key("update_columns", &Config::update_columns,
          "upsert: the columns a conflict updates (default: every mapped column but the conflict columns; [] does nothing).");
  map.key("where", &Config::where,
          "upsert: a guard on the update, in SQL over the table (by its name) and EXCLUDED, e.g. "
          "\"EXCLUDED.updated_at > customers.updated_at\" (only if newer). A row the guard keeps is ok, code unchanged.");
  map.key("key_columns", &Config::key_columns,
          "update, delete: the columns that find the row. insert: optional, rows with the same key keep their order "
          "(of two duplicates the first is stored, the later rejected).");
  map.key("statement", &Config::statement,
          "statement: SQL with the record's fields as named parameters ($email), always bound. A SELECT or RETURNING "
          "puts its first row in the outcome's detail; no row, or no row touched, is rejected with code not_found.");
  map.key("statements", &Config::statements,
          "statement: a statement per value of statement_field (e.g. created/updated/deleted); another value is "
          "rejected with code unknown_statement.");
  map.key("statement_field", &Config::statement_field, "statement: the field whose value chooses from statements.");
  map.key("idempotent", &Config::idempotent,
          "statement: replaying the statement after a lost connection is safe (it sets values rather than adds); "
          "without it such a row is reported commit outcome unknown.");
  map.key("commit", &Config::commit,
          "per_row: each record is its own transaction (the default). batch: records go in batches through COPY, one "
          "transaction per batch, on `connections` connections at once; a row a batch cannot take is found and rejected "
          "with its own error, the others still stored (modes insert and upsert).")
      .one_of({"per_row", "batch"});
  map.key("batch_rows", &Config::batch_rows,
          "commit: batch. Rows per batch at most. The sink holds at most connections + 2 batches (and the host their "
          "records).")
      .minimum(1)
      .maximum(1000000);
  map.key("batch_bytes", &Config::batch_bytes, "commit: batch. Bytes of COPY data per batch at most.")
      .minimum(1024)
      .maximum(256 << 20);
  map.key("guess_failures", &Config::guess_failures,
          "commit: batch, insert. Guess from the table's definition (types, NOT NULL, CHECKs of the form column <op> "
          "number, unique keys already seen) which rows the server will refuse, and try those alone after their batch's "
          "COPY, all in one statement: bad rows then cost no COPY and no exchange of their own. The server still decides "
          "every row; a wrong guess costs time only.");
  map.key("pipeline", &Config::pipeline, "Send rows without waiting for each answer (libpq pipeline mode).");
  map.key("connections", &Config::connections,
          "Connections writing in parallel; commits on different connections share WAL flushes (group commit). "
          "commit: batch: about the server's cores (2-4) is best, each loads its own batch.")
      .minimum(1)
      .maximum(64);
  map.key("max_in_flight", &Config::max_in_flight, "Rows sent but not yet answered, per connection (pipeline mode).")
      .minimum(1)
      .maximum(10000);
  sdk::RetryPolicy::declare(map, &Config::retry,
                            "Reconnects after a lost connection or server restart, and retries of rows that hit a "
                            "serialization failure, deadlock or resource error: attempts count failures in a row "
                            "without progress.");
  map.key("lookup_unanswered", &Config::lookup_unanswered,
          "After a lost connection, decide rows whose answer never arrived by looking them up (mapped columns, "
          "inserting transaction). false: report them failed, commit outcome unknown.");
  map.key("answer_timeout", &Config::answer_timeout,
          "Seconds without any answer while rows are in flight before the connection is taken as lost (a stalled "
          "network does not end a TCP connection by itself).")
      .exclusive_minimum(0);
  map.key("settle_timeout", &Config::settle_timeout,
          "Seconds to wait for the server process of a lost connection to end before its rows are decided.")
      .minimum(0);
  return map;
}

}  // namespace etl::plugins::postgres
