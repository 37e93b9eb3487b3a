#include "pipeline_schema.hpp"

namespace etl::host {

using nlohmann::json;

const json& pipeline_document_schema() {
  static const json schema = json::parse(R"({
    "type": "object",
    "additionalProperties": false,
    "required": ["source", "sink", "reporters"],
    "properties": {
      "$schema": {"type": "string"},
      "name": {"type": "string", "description": "Name used in logs and reports; defaults to the file name."},
      "description": {"type": "string"},
      "source": {"$ref": "#/$defs/stage"},
      "transforms": {"type": "array", "default": [], "items": {"$ref": "#/$defs/transform"},
                     "description": "Stages between source and sink, applied in order."},
      "sink": {"$ref": "#/$defs/stage"},
      "reporters": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/stage"}},
      "settings": {
        "type": "object",
        "additionalProperties": false,
        "default": {},
        "properties": {
          "batch_size": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1000,
                         "description": "Records read from the source per call."},
          "progress_interval": {"type": "number", "minimum": 0, "default": 5,
                                "description": "Seconds between progress log lines; 0 turns them off."},
          "drain_timeout": {"type": "number", "minimum": 0, "default": 10,
                            "description": "After a stop (SIGTERM), seconds every stage shares to settle what is in flight (answers the source owes, rows and requests the sink sent); what is left then is reported failed, saying so."},
          "state": {
            "type": "object",
            "additionalProperties": false,
            "required": ["store"],
            "description": "Keep the source's position between runs: a run resumes after the last record every record before which has its final outcome (see docs/guarantees.md). Off when absent.",
            "properties": {
              "store": {"enum": ["file", "postgres"],
                        "description": "file: a file per pipeline in `path`; postgres: a row per pipeline in `table`, with a lease that keeps a second run out."},
              "path": {"type": "string", "minLength": 1, "default": "state",
                       "description": "file: the folder of state files (relative to the working directory); <name>.state.json in it."},
              "commit_interval": {"type": "number", "minimum": 0.01, "default": 1,
                                  "description": "Seconds between commits of the position (and at the end of the run, after a stop or failure too)."},
              "commit_past_failed": {"type": "boolean", "default": false,
                                     "description": "Commit past records whose outcome is failed (they are then only in the failure report). By default a failed record holds the position before it, so the next run reads it again."},
              "host": {"type": "string", "minLength": 1, "description": "postgres: server host."},
              "port": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string", "pattern": "^[0-9]+$"}],
                       "description": "postgres: server port (default 5432)."},
              "user": {"type": "string", "minLength": 1, "description": "postgres: user to connect as."},
              "password": {"type": "string", "description": "postgres: password (a secret: never logged); prefer ${file:...}."},
              "dbname": {"type": "string", "minLength": 1, "description": "postgres: database."},
              "sslmode": {"enum": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
                          "description": "postgres: libpq sslmode (default prefer)."},
              "sslrootcert": {"type": "string", "description": "postgres: CA file for verify-ca / verify-full."},
              "table": {"type": "string", "minLength": 1, "pattern": "^[^.]+(\\.[^.]+)?$", "default": "etl_state",
                        "description": "postgres: the state table, `table` or `schema.table`; created when missing."},
              "lease": {"type": "number", "minimum": 1, "default": 60,
                        "description": "postgres: seconds a run's hold on the row lasts after its last commit; another run may take over once it expired."}
            }
          },
          "max_rejected": {"anyOf": [{"type": "integer", "minimum": 0},
                                     {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?%$"}],
                           "description": "Error budget: stop the run (exit code 8) once more records than this are rejected; a count, or a percentage of the records settled (checked from 100 records on, and at the end). Unlimited when absent."}
        }
      }
    },
    "$defs": {
      "stage": {
        "type": "object",
        "additionalProperties": false,
        "required": ["plugin"],
        "properties": {
          "plugin": {"type": "string", "minLength": 1},
          "config": {"type": "object", "default": {}}
        }
      },
      "transform": {
        "type": "object",
        "additionalProperties": false,
        "required": ["plugin"],
        "properties": {
          "plugin": {"type": "string", "minLength": 1},
          "config": {"type": "object", "default": {}},
          "when": {
            "type": "object",
            "additionalProperties": false,
            "required": ["field"],
            "minProperties": 2,
            "maxProperties": 2,
            "description": "Apply the transform only to records whose field matches; the others pass unchanged.",
            "properties": {
              "field": {"type": "string", "minLength": 1},
              "equals": {"description": "The field's value equals this (compared by text form; null matches a null or missing field)."},
              "in": {"type": "array", "minItems": 1, "description": "The field's value equals one of these."},
              "exists": {"type": "boolean", "description": "true: the field is present and not null; false: it is missing or null."}
            }
          }
        }
      }
    }
  })");
  return schema;
}

json pipeline_validation_schema() {
  json schema = pipeline_document_schema();
  const json stage = schema.at("$defs").at("stage");
  schema["properties"]["source"] = stage;
  schema["properties"]["transforms"]["items"] = schema.at("$defs").at("transform");
  schema["properties"]["sink"] = stage;
  schema["properties"]["reporters"]["items"] = stage;
  schema.erase("$defs");
  return schema;
}

namespace {

/// A config schema whose every property also accepts "${VAR}" (unless it is already any string).
json accepting_placeholders(json config) {
  static const json placeholder = {{"type", "string"}, {"pattern", "\\$\\{"}};
  if (!config.contains("properties")) return config;
  for (auto& [key, property] : config["properties"].items()) {
    const bool any_string = property.value("type", json()) == "string" && !property.contains("enum") &&
                            !property.contains("pattern") && !property.contains("const");
    if (!any_string) property = json{{"anyOf", json::array({property, placeholder})}};
  }
  return config;
}

/// {"oneOf": [...]}: one variant per plugin of `kind`, its name (or an alias) and its config.
json variants_of(const std::vector<PluginSchemaEntry>& plugins, etl::sdk::PluginKind kind) {
  json variants = json::array();
  for (const auto& plugin : plugins) {
    if (plugin.kind != kind) continue;
    json names = json::array({plugin.name});
    for (const auto& alias : plugin.aliases) names.push_back(alias);
    variants.push_back(json{{"type", "object"},
                            {"additionalProperties", false},
                            {"required", json::array({"plugin"})},
                            {"properties", {{"plugin", {{"enum", names}}}, {"config", accepting_placeholders(plugin.config_schema)}}}});
  }
  return json{{"oneOf", variants}};
}

}  // namespace

json editor_schema(const std::vector<PluginSchemaEntry>& plugins) {
  json schema = pipeline_document_schema();
  schema["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  schema["title"] = "etl-host pipeline";
  schema["$defs"]["source"] = variants_of(plugins, etl::sdk::PluginKind::source);
  schema["$defs"]["sink"] = variants_of(plugins, etl::sdk::PluginKind::sink);
  schema["$defs"]["reporter"] = variants_of(plugins, etl::sdk::PluginKind::reporter);
  json transform = variants_of(plugins, etl::sdk::PluginKind::transform);
  const json& when = pipeline_document_schema().at("$defs").at("transform").at("properties").at("when");
  for (auto& variant : transform["oneOf"]) variant["properties"]["when"] = when;
  schema["$defs"]["transform_stage"] = transform;
  schema["$defs"].erase("transform");
  schema["$defs"].erase("stage");
  schema["properties"]["source"] = {{"$ref", "#/$defs/source"}};
  schema["properties"]["transforms"]["items"] = {{"$ref", "#/$defs/transform_stage"}};
  schema["properties"]["sink"] = {{"$ref", "#/$defs/sink"}};
  schema["properties"]["reporters"]["items"] = {{"$ref", "#/$defs/reporter"}};
  return schema;
}

}  // namespace etl::host
