#pragma once
// Row changes as records: a change's columns with PostgreSQL's types mapped to SDK values, and
// what the change is (_op, _table, _lsn, _commit_time, _xid; _old for the old key or row;
// _unchanged for TOAST columns the server did not send). No I/O.
//
// Types (by the column's type OID; values come in the server's text form):
//   int2, int4, int8, oid      -> integer
//   float4, float8             -> real
//   bool                       -> boolean
//   bytea                      -> bytes
//   json, jsonb                -> json (an object or array; a JSON scalar stays text)
//   numeric                    -> string (exact: no precision lost to a double)
//   everything else            -> string: text types, date, time, timestamp(tz) (the server's
//                                 text, ISO with DateStyle ISO), uuid, arrays, enums, ranges,
//                                 types of extensions.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "etl/sdk/record.hpp"
#include "etl/sdk/value.hpp"
#include "pgoutput.hpp"

namespace etl::plugins::postgres_cdc {

/// The transaction a change belongs to (from its Begin message).
struct TransactionFacts {
  std::uint32_t xid = 0;
  std::int64_t commit_time = 0;  ///< microseconds since 2000-01-01 UTC
};

/// The SDK value of a column's text as the server sent it; throws std::runtime_error when the
/// text is not of its type (a server would not send that).
sdk::Value column_value(std::uint32_t type_oid, const std::string& text);

/// The record of a row change (insert, update, delete) or of one truncated relation, at
/// `lsn` (the WAL position of the change). Fields, in this order: the row's columns (insert,
/// update: the new row; delete: the old key's columns, or the whole old row with replica
/// identity full), then _op, _table, _lsn, _commit_time, _xid, and when there is one _old (a
/// JSON object: the old key, or the old row with replica identity full) and _unchanged (a JSON
/// array of the columns left out because they were not changed and not sent).
sdk::Record change_record(const Message& change, const TransactionFacts& transaction, std::uint64_t lsn);
/// The records of a Truncate message: one per relation, with _op "truncate", _cascade and
/// _restart_identity.
std::vector<sdk::Record> truncate_records(const Message& truncate, const TransactionFacts& transaction, std::uint64_t lsn);

/// The fields a change of `relation` can have: its columns, then the change's own fields.
std::vector<std::string> record_fields(const Relation& relation);
/// The change's own fields, in their order.
const std::vector<std::string>& change_fields();

}  // namespace etl::plugins::postgres_cdc
