#pragma once
// Statements with named parameters: `SELECT dob FROM users WHERE name = $username` becomes
// `... WHERE name = $1` with the field list ["username"]. Values are always bound, never
// spliced. Quoted text ('...', "...", dollar-quoted $tag$...$tag$) and comments are left alone,
// as are positional $1 and casts (::).

#include <string>
#include <string_view>
#include <vector>

namespace etl::plugins::postgres {

struct NamedStatement {
  std::string sql;                  // with $1, $2, ...
  std::vector<std::string> fields;  // the field of each parameter, in order
};

/// Throws std::invalid_argument naming what is wrong (an unterminated quote or comment, a
/// positional $1 mixed with names).
NamedStatement parse_named_parameters(std::string_view text);

}  // namespace etl::plugins::postgres
