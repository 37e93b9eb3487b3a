#pragma once
// Validation of pipeline files and plugin configs against JSON Schemas.
//
// valijson (draft 7) judges. What a validator does not do is done here, in one pass before it:
// textual values (from interpolation or --set) are converted to the type the schema asks for,
// defaults of missing properties are filled in, values of properties marked with the
// etl-host extension "secret": true are collected for redaction, and strings are checked to be
// UTF-8. valijson's verdicts are then put into words for the user: the pointer of the value,
// what is wrong with it, where it came from, and for an unknown key the one probably meant.
// Other extensions: "output_file": true marks a property naming a file the plugin writes
// (two stages may not name the same one).

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace etl::host {

struct Diagnostic {
  std::string pointer;  ///< JSON pointer of the offending value, e.g. /source/config/size
  std::string message;
};

/// Where a value came from, when not literally from the file.
struct ValueOrigins {
  /// Pointers of string values that came from text outside the JSON (interpolation, --set):
  /// they are converted to the integer, number or boolean the schema asks for.
  std::set<std::string> textual;
  /// Pointer -> a description of the source, e.g. "from ${TOKEN_COUNT}".
  std::map<std::string, std::string> described;
};

struct ValidationResult {
  std::vector<Diagnostic> diagnostics;
  /// Values of properties marked "secret": true, for redaction.
  std::vector<std::string> secrets;
};

/// Escapes a key for use in a JSON pointer (RFC 6901).
std::string pointer_token(const std::string& key);

/// Validates `value` against `schema` in place: fills in defaults of missing properties and
/// converts textual values (see ValueOrigins) to the types the schema asks for. Every problem
/// found is appended to `result`, not only the first.
void validate_against_schema(const nlohmann::json& schema, nlohmann::json& value,
                             const std::string& pointer, const ValueOrigins& origins,
                             ValidationResult& result);

/// The word of `allowed` closest to `word`, when it is close enough to be a typo of it (a third
/// of its length in single-character edits, 1 to 3): config keys' and plugin names' "did you mean".
std::optional<std::string> closest_word(const std::string& word, const std::vector<std::string>& allowed);

/// Checks that a plugin's schema is usable: valijson can compile it, it is an object schema
/// with known types, and every default passes its own schema; returns problems, empty when fine.
std::vector<std::string> check_schema(const nlohmann::json& schema);

/// A copy of `value` with every property marked secret replaced by "***".
nlohmann::json redact_secrets(const nlohmann::json& schema, const nlohmann::json& value);

}  // namespace etl::host
