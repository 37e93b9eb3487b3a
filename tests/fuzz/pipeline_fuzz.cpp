// Fuzzes pipeline loading: JSON parsing, --set overrides, ${...} interpolation and schema checks.
// Any input must end in a valid spec or a PipelineError; anything else (a crash, another
// exception, a sanitizer report) is a bug.

#include <cstdint>
#include <string>

#include "interpolate.hpp"
#include "pipeline.hpp"

namespace {

using nlohmann::json;

const json kSchema = json::parse(R"({
  "type": "object", "additionalProperties": false, "required": ["url"],
  "properties": {"url": {"type": "string", "minLength": 1},
                 "size": {"type": "integer", "minimum": 1, "default": 5},
                 "verify": {"type": "boolean", "default": true},
                 "ratio": {"type": "number"},
                 "password": {"type": "string", "secret": true},
                 "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                 "limit": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+%$"}]},
                 "list": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}}})");

etl::host::SchemaLookupResult lookup(const std::string&, const std::string&) { return {&kSchema, ""}; }

std::optional<std::string> variable(const std::string& name) {
  if (name == "SET") return std::string("value");
  if (name == "NUMBER") return std::string("42");
  if (name == "EMPTY") return std::string();
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // The same bytes as a string to interpolate...
  (void)etl::host::interpolate(text, variable);
  // ... as an override (the first line) and a pipeline (the rest).
  const auto newline = text.find('\n');
  std::vector<etl::host::Override> overrides;
  std::string pipeline = text;
  if (newline != std::string::npos && text.find('=') < newline) {
    try {
      overrides.push_back(etl::host::parse_override(text.substr(0, newline)));
    } catch (const std::invalid_argument&) {
    }
    pipeline = text.substr(newline + 1);
  }
  try {
    (void)etl::host::parse_pipeline("fuzz.json", pipeline, overrides, variable, lookup);
  } catch (const etl::host::PipelineError&) {
  }
  return 0;
}
