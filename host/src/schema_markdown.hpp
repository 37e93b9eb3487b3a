#pragma once
// Plugin config schemas as Markdown, for the plugin READMEs (`etl-host plugins NAME`, held equal
// to each README by scripts/check-plugin-docs).

#include <string>

#include <nlohmann/json.hpp>

namespace etl::host {

/// A plugin config schema's keys as the Markdown table plugin READMEs carry: key, type with
/// bounds, default, description. One line per key, in schema order; a block of keys of its own
/// (retry) gives one row per inner key, named block.key.
std::string config_table_markdown(const nlohmann::json& schema);

}  // namespace etl::host
