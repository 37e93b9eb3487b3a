#pragma once
// Pipeline files: reading, --set overrides, interpolation and validation.

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "condition.hpp"
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
  /// The config passed its plugin's schema (false while a pipeline has problems).
  bool schema_valid = false;
  /// Transforms only: the records the transform applies to (all when absent).
  std::optional<Condition> when;
};

struct PipelineSpec {
  std::string path;
  std::string name;
  StageSpec source;
  std::vector<StageSpec> transforms;
  StageSpec sink;
  std::vector<StageSpec> reporters;
  /// Host settings (batch size, progress interval, error budget), defaults filled in.
  nlohmann::json settings = nlohmann::json::object();
  /// Secret values in settings (the state store's password), for redaction.
  std::vector<std::string> settings_secrets;

  /// Every stage, source first.
  [[nodiscard]] std::vector<const StageSpec*> stages() const {
    std::vector<const StageSpec*> all{&source};
    for (const auto& transform : transforms) all.push_back(&transform);
    all.push_back(&sink);
    for (const auto& reporter : reporters) all.push_back(&reporter);
    return all;
  }
};

/// All problems found in a pipeline, each already formatted as "FILE: /pointer: message".
class PipelineError : public std::runtime_error {
 public:
  explicit PipelineError(std::vector<std::string> problems, std::shared_ptr<const PipelineSpec> partial = nullptr);
  [[nodiscard]] const std::vector<std::string>& problems() const noexcept { return problems_; }
  /// The stages as far as they could be read (see StageSpec::schema_valid), when the document
  /// itself was sound; null otherwise.
  [[nodiscard]] const std::shared_ptr<const PipelineSpec>& partial() const noexcept { return partial_; }

 private:
  std::vector<std::string> problems_;
  std::shared_ptr<const PipelineSpec> partial_;
};

/// Limits on a pipeline file: far above any real one, low enough that a wrong file given by
/// mistake (a log, /dev/zero, a hostile document) is refused quickly.
inline constexpr std::size_t kMaxPipelineBytes = 4 * 1024 * 1024;
inline constexpr std::size_t kMaxPipelineDepth = 64;

/// A `--set path=value` override: `source.config.size=20`, `reporters.0.config.path=x.csv`.
struct Override {
  std::string path;
  std::string value;
};

/// Parses "path=value"; throws std::invalid_argument naming the text when there is no '='.
Override parse_override(const std::string& text);

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
