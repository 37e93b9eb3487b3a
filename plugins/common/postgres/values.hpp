#pragma once
// PostgreSQL's text output of a value as a typed SDK value, and a result row as record fields.

#include <libpq-fe.h>

#include <string_view>

#include "etl/sdk/record.hpp"

namespace etl::plugins::postgres {

// Type OIDs from pg_type.dat; stable across PostgreSQL versions.
inline constexpr Oid kBoolOid = 16, kByteaOid = 17, kInt8Oid = 20, kInt2Oid = 21, kInt4Oid = 23, kOidOid = 26,
                     kJsonOid = 114, kFloat4Oid = 700, kFloat8Oid = 701, kJsonbOid = 3802;

/// The value of `text` (PostgreSQL's text output of a value of type `type`). numeric, dates
/// and every other type stay strings: their text form is exact, a double would not be.
sdk::Value value_from_text(Oid type, std::string_view text);

/// Row `row` of `result` as fields named after the columns (null stays null).
void set_fields_from_row(const PGresult* result, int row, sdk::Record& record);

}  // namespace etl::plugins::postgres
