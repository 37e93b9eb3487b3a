#include "plugin_harness.hpp"

#include <atomic>
#include <stdexcept>

#include "test_support.hpp"

namespace etl::testing {

host::PluginInfo bundled_plugin(const std::string& name) {
  host::PluginRegistry registry;
  registry.scan({host::PluginRegistry::bundled_plugin_dir()});
  for (const auto& info : registry.plugins()) {
    if (info.name == name) return info;
  }
  // The test binaries live in build/bin like etl-host, so the bundled folder is the same.
  throw std::runtime_error("bundled plugin '" + name + "' not found in " +
                           host::PluginRegistry::bundled_plugin_dir());
}

std::string CheckedConfig::problems_text() const {
  std::string text;
  for (const auto& p : problems) text += p.pointer + ": " + p.message + "\n";
  return text;
}

CheckedConfig check_config(const host::PluginInfo& plugin, nlohmann::json config) {
  CheckedConfig checked;
  host::ValidationResult result;
  host::validate_against_schema(plugin.schema, config, "", host::ValueOrigins{}, result);
  checked.config = std::move(config);
  checked.problems = std::move(result.diagnostics);
  return checked;
}

namespace {
const host::RunStop kNeverStop;
}

template <class T>
host::PluginInstance<T> create_plugin(const host::PluginInfo& plugin, nlohmann::json config) {
  CheckedConfig checked = check_config(plugin, std::move(config));
  if (!checked.problems.empty()) {
    throw std::runtime_error("config of " + plugin.name + " is invalid:\n" + checked.problems_text());
  }
  host::PluginInstance<T> instance;
  instance.library = plugin.descriptor;
  instance.name = plugin.name;
  instance.context = std::make_unique<host::HostContext>(plugin.name, kNeverStop, /*downstream=*/false, nullptr);
  const std::string text = checked.config.dump();
  const sdk::PluginArgs args{text, *instance.context};
  // An exception object thrown by the plugin lives in the plugin's code: it must be copied
  // into one of ours before `instance` (and perhaps the library) goes away.
  try {
    if constexpr (std::is_same_v<T, sdk::Source>) {
      instance.object = plugin.descriptor->create_source(args);
    } else if constexpr (std::is_same_v<T, sdk::Sink>) {
      instance.object = plugin.descriptor->create_sink(args);
    } else if constexpr (std::is_same_v<T, sdk::Transform>) {
      instance.object = plugin.descriptor->create_transform(args);
    } else {
      instance.object = plugin.descriptor->create_reporter(args);
    }
  } catch (const sdk::ConfigError& e) {
    throw sdk::ConfigError(e.path(), e.what());
  } catch (const std::exception& e) {
    throw std::runtime_error(e.what());
  }
  return instance;
}

template host::PluginInstance<sdk::Source> create_plugin<sdk::Source>(const host::PluginInfo&, nlohmann::json);
template host::PluginInstance<sdk::Sink> create_plugin<sdk::Sink>(const host::PluginInfo&, nlohmann::json);
template host::PluginInstance<sdk::Reporter> create_plugin<sdk::Reporter>(const host::PluginInfo&, nlohmann::json);
template host::PluginInstance<sdk::Transform> create_plugin<sdk::Transform>(const host::PluginInfo&, nlohmann::json);

}  // namespace etl::testing
