#pragma once
// The pipeline file's schema, owned here and nowhere else: the document itself (stages,
// transforms with their `when`, settings), the form the loader validates with, and the schema
// editors get from `etl-host schema`, composed with every plugin's config schema.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk/plugin.hpp"

namespace etl::host {

/// The JSON Schema of a pipeline file itself, plugin configs left open ("type": "object").
/// Stages are written once in $defs and referenced.
const nlohmann::json& pipeline_document_schema();

/// The same with each $ref replaced by its definition: the loader checks a pipeline part by
/// part (the document first, then each stage's config against its plugin's schema), and a
/// part must carry its whole schema.
nlohmann::json pipeline_validation_schema();

/// A plugin as the editor schema names it.
struct PluginSchemaEntry {
  etl::sdk::PluginKind kind;
  std::string name;
  std::vector<std::string> aliases;
  nlohmann::json config_schema;
};

/// The schema `etl-host schema` prints (JSON Schema 2020-12, for editors and CI checks): the
/// document schema with each stage one of the plugins of its kind, each with its own config
/// schema, and any config value allowed to be a "${VAR}" placeholder (whatever its type, a
/// placeholder is text in the file).
nlohmann::json editor_schema(const std::vector<PluginSchemaEntry>& plugins);

}  // namespace etl::host
