#pragma once
// Reads a table's definition from the catalog over a live session (the I/O half of
// table_facts.hpp).

#include <optional>
#include <string>
#include <vector>

#include "postgres/session.hpp"
#include "postgres/table_facts.hpp"

namespace etl::plugins::postgres {

/// Reads the facts of `schema`.`table` over `session`; nullopt (with `error` set) when the
/// catalog cannot be read.
std::optional<CatalogFacts> read_table_facts(PgSession& session, const std::string& schema, const std::string& table,
                                             const std::vector<std::string>& mapped, std::string& error);

}  // namespace etl::plugins::postgres
