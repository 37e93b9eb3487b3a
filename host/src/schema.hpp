#pragma once
// A JSON Schema validator for the subset plugin config schemas use.
//
// Supported keywords: type (one or a list), properties, required, additionalProperties
// (boolean or schema), items, enum, const, minimum, maximum, exclusiveMinimum,
// exclusiveMaximum, minLength, maxLength, minItems, maxItems, pattern, anyOf, default, and the
// etl-host extension "secret": true (the value is redacted from logs and printed configs).
// Annotations (title, description, examples, format, $schema, $id) are accepted and ignored.
// No JSON Schema library ships with Debian 12 for C++, hence this small one.

#include <map>
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

/// Checks that a plugin's schema is one this validator understands (an object schema with
/// known types); returns problems, empty when fine.
std::vector<std::string> check_schema(const nlohmann::json& schema);

/// A copy of `value` with every property marked secret replaced by "***".
nlohmann::json redact_secrets(const nlohmann::json& schema, const nlohmann::json& value);

}  // namespace etl::host
