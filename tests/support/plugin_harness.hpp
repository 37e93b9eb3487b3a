#pragma once
// Running plugins in-process in tests: load a real plugin library, check a config against its
// schema as the host does, create the plugin, and collect a sink's outcomes.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk/plugin.hpp"
#include "etl/sdk/testing.hpp"
#include "plugin_registry.hpp"
#include "runner.hpp"
#include "schema.hpp"

namespace etl::testing {

/// A bundled plugin from the build tree, by name.
host::PluginInfo bundled_plugin(const std::string& name);

/// The config after the host's checks (defaults filled in) and the problems found.
struct CheckedConfig {
  nlohmann::json config;
  std::vector<host::Diagnostic> problems;
  [[nodiscard]] std::string problems_text() const;
};
CheckedConfig check_config(const host::PluginInfo& plugin, nlohmann::json config);

/// Checks the config and creates the plugin; throws std::runtime_error listing problems.
template <class T>
host::PluginInstance<T> create_plugin(const host::PluginInfo& plugin, nlohmann::json config);

/// The SDK harness's receiver and record builder serve the repository's own tests too.
using CollectingReceiver = sdk::testing::CollectingReceiver;
inline sdk::Batch records_with(const std::string& field, const std::vector<std::string>& values) {
  return sdk::testing::records(field, values);
}

}  // namespace etl::testing
