#pragma once
// Pipeline files: reading, --set overrides, interpolation and validation.

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "interpolate.hpp"
#include "schema.hpp"

namespace etl::host {

/// One stage of the pipeline: `{ "plugin": "<name>", "config": { ... } }`.
struct StageSpec {
  std::string plugin;
  nlohmann::json config = nlohmann::json::object();
  /// JSON pointer of the stage in the file, e.g. /source or /reporters/1.
  std::string pointer;
  /// Secret values found in this stage's config (for redaction).
  std::vector<std::string> secrets;
};

struct PipelineSpec {
  std::string path;
  std::string name;
  StageSpec source;
  StageSpec sink;
  std::vector<StageSpec> reporters;
  /// Host settings (batch size, progress interval, error budget), defaults filled in.
  nlohmann::json settings = nlohmann::json::object();
};

/// All problems found in a pipeline, each already formatted as "FILE: /pointer: message".
class PipelineError : public std::runtime_error {
 public:
  explicit PipelineError(std::vector<std::string> problems);
  [[nodiscard]] const std::vector<std::string>& problems() const noexcept { return problems_; }

 private:
  std::vector<std::string> problems_;
};

/// A `--set path=value` override: `source.config.size=20`, `reporters.0.config.path=x.csv`.
struct Override {
  std::string path;
  std::string value;
};

/// Parses "path=value"; throws std::invalid_argument naming the text when there is no '='.
Override parse_override(const std::string& text);

/// The JSON Schema of a pipeline file itself (without plugin configs).
const nlohmann::json& pipeline_document_schema();

/// Given a plugin name and the stage it is used in ("source", "sink", "reporter"), returns the
/// plugin's config schema, or an error message (unknown plugin, wrong kind).
struct SchemaLookupResult {
  const nlohmann::json* schema = nullptr;
  std::string error;
};
using SchemaLookup =
    std::function<SchemaLookupResult(const std::string& plugin, const std::string& kind)>;

/// Reads and checks a pipeline: JSON syntax, document structure, overrides, interpolation,
/// and each config against its plugin's schema. Throws PipelineError listing every problem.
PipelineSpec load_pipeline(const std::string& path, const std::vector<Override>& overrides,
                           const VariableLookup& variables, const SchemaLookup& schemas);

/// The same, from text already in memory (`path` is used in messages only).
PipelineSpec parse_pipeline(const std::string& path, const std::string& text,
                            const std::vector<Override>& overrides,
                            const VariableLookup& variables, const SchemaLookup& schemas);

}  // namespace etl::host
