#include "pipeline.hpp"
#include "pipeline_schema.hpp"

#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "error_budget.hpp"

namespace etl::host {

using nlohmann::json;

PipelineError::PipelineError(std::vector<std::string> problems, std::shared_ptr<const PipelineSpec> partial)
    : std::runtime_error(problems.empty() ? std::string("invalid pipeline") : problems.front()),
      problems_(std::move(problems)),
      partial_(std::move(partial)) {}

Override parse_override(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw std::invalid_argument("--set " + text + ": expected PATH=VALUE, e.g. source.config.size=20");
  }
  return Override{text.substr(0, eq), text.substr(eq + 1)};
}


namespace {


std::string line_and_column(const std::string& text, std::size_t byte) {
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return std::to_string(line) + ":" + std::to_string(column);
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(path);
  while (std::getline(in, part, '.')) parts.push_back(part);
  return parts;
}

bool all_digits(const std::string& text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return c >= '0' && c <= '9';
  });
}

/// Applies one override to the document; returns the pointer it set, or an error.
std::string apply_override(json& document, const Override& change, ValueOrigins& origins,
                           std::vector<std::string>& problems) {
  const auto parts = split_path(change.path);
  json* node = &document;
  std::string pointer;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.empty()) {
      problems.push_back("--set " + change.path + ": empty path segment");
      return {};
    }
    const bool last = i + 1 == parts.size();
    if (node->is_array()) {
      std::size_t index = 0;
      const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), index);
      if (!all_digits(part) || error != std::errc() || end != part.data() + part.size() || index >= node->size()) {
        problems.push_back("--set " + change.path + ": " + pointer + " has no item " + part);
        return {};
      }
      pointer += "/" + part;
      node = &(*node)[index];
    } else {
      if (node->is_null()) *node = json::object();
      if (!node->is_object()) {
        problems.push_back("--set " + change.path + ": " + (pointer.empty() ? "/" : pointer) +
                           " is not an object");
        return {};
      }
      pointer += "/" + pointer_token(part);
      if (!last && !node->contains(part)) (*node)[part] = json::object();
      node = &(*node)[part];
    }
  }
  // A value that parses as JSON keeps its type (20, true, {"a":1}); anything else is text.
  json value = json::parse(change.value, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    value = change.value;
    origins.textual.insert(pointer);
  }
  *node = value;
  origins.described[pointer] = "from --set " + change.path;
  return pointer;
}

void interpolate_tree(json& node, const std::string& pointer, const VariableLookup& variables,
                      ValueOrigins& origins, std::vector<Diagnostic>& problems,
                      std::vector<std::string>& secrets) {
  if (node.is_string()) {
    const std::string& text = node.get_ref<const std::string&>();
    if (text.find('$') == std::string::npos) return;
    Interpolated result = interpolate(text, variables);
    for (auto& error : result.errors) problems.push_back(Diagnostic{pointer, std::move(error)});
    if (!result.substituted) {
      node = result.value;  // only $$ escapes were present
      return;
    }
    origins.textual.insert(pointer);
    std::string described;
    for (const auto& name : result.variables) {
      described += (described.empty() ? "from " : ", ") + std::string("${") + name + "}";
    }
    if (described.empty()) described = "from a file";
    origins.described[pointer] = described;
    if (result.from_file) secrets.push_back(result.value);
    node = std::move(result.value);
  } else if (node.is_object()) {
    for (auto& [key, member] : node.items()) {
      interpolate_tree(member, pointer + "/" + pointer_token(key), variables, origins, problems,
                       secrets);
    }
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      interpolate_tree(node[i], pointer + "/" + std::to_string(i), variables, origins, problems,
                       secrets);
    }
  }
}

std::string format(const std::string& path, const Diagnostic& d) {
  return path + ": " + d.pointer + ": " + d.message;
}

}  // namespace

PipelineSpec parse_pipeline(const std::string& path, const std::string& text,
                            const std::vector<Override>& overrides,
                            const VariableLookup& variables, const SchemaLookup& schemas) {
  std::vector<std::string> problems;
  json document;
  struct TooDeep {
    std::size_t depth;
  };
  try {
    // Every later step walks the document recursively: refuse deep nesting while parsing.
    document = json::parse(text, [](int depth, json::parse_event_t event, json&) {
      if (depth > static_cast<int>(kMaxPipelineDepth) &&
          (event == json::parse_event_t::object_start || event == json::parse_event_t::array_start)) {
        throw TooDeep{static_cast<std::size_t>(depth)};
      }
      return true;
    });
  } catch (const TooDeep&) {
    throw PipelineError({path + ": nested more than " + std::to_string(kMaxPipelineDepth) +
                         " levels deep; a pipeline file needs far fewer"});
  } catch (const json::parse_error& e) {
    std::string reason = e.what();
    // nlohmann's message starts with "[json.exception.parse_error.101] parse error at line..."
    if (const auto at = reason.find("parse error"); at != std::string::npos) {
      reason = reason.substr(at);
    }
    throw PipelineError({path + ":" + line_and_column(text, e.byte == 0 ? 0 : e.byte - 1) +
                         ": malformed JSON: " + reason});
  } catch (const json::exception& e) {
    // For example a number too large for a double (1e999): found by the pipeline fuzzer.
    std::string reason = e.what();
    if (const auto at = reason.find("] "); at != std::string::npos) reason = reason.substr(at + 2);
    throw PipelineError({path + ": malformed JSON: " + reason});
  }

  ValueOrigins origins;
  for (const auto& change : overrides) apply_override(document, change, origins, problems);
  if (!problems.empty()) throw PipelineError(problems);

  // settings.state names files and connections like a stage's config does: ${VAR} works there too.
  std::vector<std::string> settings_secrets;
  if (document.is_object() && document.contains("settings") && document["settings"].is_object() &&
      document["settings"].contains("state")) {
    std::vector<Diagnostic> state_problems;
    interpolate_tree(document["settings"]["state"], "/settings/state", variables, origins, state_problems, settings_secrets);
    for (const auto& d : state_problems) problems.push_back(format(path, d));
    const json& state = document["settings"]["state"];
    if (state.is_object() && state.contains("password") && state["password"].is_string() &&
        !state["password"].get<std::string>().empty()) {
      settings_secrets.push_back(state["password"].get<std::string>());
    }
    if (!problems.empty()) throw PipelineError(problems);
  }

  ValidationResult structure;
  static const json document_schema = pipeline_validation_schema();
  validate_against_schema(document_schema, document, "", origins, structure);
  for (const auto& d : structure.diagnostics) problems.push_back(format(path, d));
  if (!problems.empty()) throw PipelineError(problems);
  // Settings the schema cannot check fully are checked here, so validate finds what run would.
  try {
    ErrorBudget checked(document.at("settings").value("max_rejected", json()));
  } catch (const std::invalid_argument& e) {
    problems.push_back(path + ": /settings/max_rejected: " + e.what());
  }

  PipelineSpec spec;
  spec.path = path;
  spec.name = document.value("name", std::string());
  if (spec.name.empty()) {
    const auto slash = path.find_last_of('/');
    spec.name = path.substr(slash == std::string::npos ? 0 : slash + 1);
    if (spec.name.size() > 5 && spec.name.ends_with(".json")) {
      spec.name.resize(spec.name.size() - 5);
    }
  }
  spec.settings = document.at("settings");
  spec.settings_secrets = std::move(settings_secrets);

  // Two stages writing one file would mix their records into one unreadable report.
  std::map<std::string, std::string> output_files;  // normalized path -> the pointer that names it
  auto claim_output_files = [&](const json& schema, const json& config, const std::string& config_pointer) {
    if (!schema.contains("properties") || !config.is_object()) return;
    for (const auto& [key, property] : schema.at("properties").items()) {
      if (!property.is_object() || !property.value("output_file", false)) continue;
      const auto value = config.find(key);
      if (value == config.end() || !value->is_string()) continue;
      std::error_code ec;
      std::filesystem::path file = std::filesystem::absolute(value->get<std::string>(), ec);
      const std::string normalized = (ec ? std::filesystem::path(value->get<std::string>()) : file).lexically_normal().string();
      const std::string pointer = config_pointer + "/" + pointer_token(key);
      const auto [claimed, fresh] = output_files.emplace(normalized, pointer);
      if (!fresh) {
        problems.push_back(path + ": " + pointer + ": " + value->get<std::string>() + " is also written by " +
                           claimed->second + "; give each report its own file");
      }
    }
  };

  auto build_stage = [&](const json& stage, const std::string& pointer, const std::string& kind) {
    StageSpec result;
    result.pointer = pointer;
    result.plugin = stage.at("plugin").get<std::string>();
    result.config = stage.at("config");
    const std::string config_pointer = pointer + "/config";
    std::vector<Diagnostic> interpolation_problems;
    interpolate_tree(result.config, config_pointer, variables, origins, interpolation_problems,
                     result.secrets);
    for (const auto& d : interpolation_problems) problems.push_back(format(path, d));

    const SchemaLookupResult lookup = schemas(result.plugin, kind);
    if (lookup.schema == nullptr) {
      problems.push_back(path + ": " + pointer + "/plugin: " + lookup.error);
      return result;
    }
    ValidationResult checked;
    validate_against_schema(*lookup.schema, result.config, config_pointer, origins, checked);
    result.schema_valid = checked.diagnostics.empty() && interpolation_problems.empty();
    for (const auto& d : checked.diagnostics) {
      // An unset variable already produced a clearer message for the same value.
      const bool already_reported =
          std::any_of(interpolation_problems.begin(), interpolation_problems.end(),
                      [&](const Diagnostic& i) { return i.pointer == d.pointer; });
      if (!already_reported) problems.push_back(format(path, d));
    }
    result.secrets.insert(result.secrets.end(), checked.secrets.begin(), checked.secrets.end());
    claim_output_files(*lookup.schema, result.config, config_pointer);
    return result;
  };

  spec.source = build_stage(document.at("source"), "/source", "source");
  const json& transforms = document.at("transforms");
  for (std::size_t i = 0; i < transforms.size(); ++i) {
    const std::string pointer = "/transforms/" + std::to_string(i);
    StageSpec transform = build_stage(transforms[i], pointer, "transform");
    if (const auto when = transforms[i].find("when"); when != transforms[i].end()) {
      try {
        transform.when = Condition::from_json(*when);
      } catch (const std::invalid_argument& e) {
        problems.push_back(path + ": " + pointer + "/when: " + e.what());
      }
    }
    spec.transforms.push_back(std::move(transform));
  }
  spec.sink = build_stage(document.at("sink"), "/sink", "sink");
  const json& reporters = document.at("reporters");
  for (std::size_t i = 0; i < reporters.size(); ++i) {
    spec.reporters.push_back(
        build_stage(reporters[i], "/reporters/" + std::to_string(i), "reporter"));
  }
  if (!problems.empty()) throw PipelineError(problems, std::make_shared<const PipelineSpec>(spec));
  return spec;
}

PipelineSpec load_pipeline(const std::string& path, const std::vector<Override>& overrides,
                           const VariableLookup& variables, const SchemaLookup& schemas) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw PipelineError({path + ": is a folder, not a pipeline file"});
  std::ifstream in(path, std::ios::binary);
  if (!in) throw PipelineError({path + ": cannot open the pipeline file"});
  // Read at most one byte past the limit: /dev/zero or a log file given by mistake must not
  // fill memory.
  std::string text(kMaxPipelineBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) throw PipelineError({path + ": cannot read the pipeline file"});
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxPipelineBytes) {
    throw PipelineError({path + ": larger than " + std::to_string(kMaxPipelineBytes / (1024 * 1024)) +
                         " MiB; not a pipeline file"});
  }
  return parse_pipeline(path, text, overrides, variables, schemas);
}

}  // namespace etl::host
