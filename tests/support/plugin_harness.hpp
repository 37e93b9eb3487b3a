#pragma once
// Running plugins in-process in tests: load a real plugin library, check a config against its
// schema as the host does, create the plugin, and collect a sink's outcomes.

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk/plugin.hpp"
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

/// Collects outcomes delivered by a sink, from any thread.
class CollectingReceiver final : public sdk::OutcomeReceiver {
 public:
  void deliver(std::uint64_t sequence, sdk::Outcome outcome) noexcept override;
  [[nodiscard]] std::map<std::uint64_t, sdk::Outcome> outcomes() const;
  [[nodiscard]] std::size_t deliveries() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::uint64_t, sdk::Outcome> outcomes_;
  std::size_t deliveries_ = 0;
};

/// Records with one field each, numbered from 1.
sdk::Batch records_with(const std::string& field, const std::vector<std::string>& values);

}  // namespace etl::testing
