#pragma once
// Finding, loading and checking plugin libraries.

#include <deque>
#include <memory>
#include <stdexcept>
#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk/plugin.hpp"

namespace etl::host {

/// A plugin library that loaded and passed every check.
struct PluginInfo {
  std::string file;
  /// Points into the loaded library and keeps it loaded: anything created by the plugin must
  /// be destroyed before the last copy of this pointer goes. (Boost.DLL, which loads it, stays
  /// inside plugin_registry.cpp.)
  std::shared_ptr<const sdk::PluginDescriptor> descriptor;
  std::string name;
  sdk::PluginKind kind = sdk::PluginKind::source;
  std::string version;
  std::string description;
  /// Other names the plugin answers to (ETL_PLUGIN_ALIASES), e.g. a short form.
  std::vector<std::string> aliases;
  std::uint32_t abi_version = 0;
  /// ETL_SDK_VERSION_STRING the plugin was built with.
  std::string sdk_version;
  nlohmann::json schema;

  /// A warning when the plugin was built with an SDK minor version newer than the host's (it
  /// may read members of host structs this host does not fill in), or nothing.
  [[nodiscard]] std::optional<std::string> newer_sdk_warning() const;

  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] bool answers_to(const std::string& wanted) const {
    return wanted == name || std::find(aliases.begin(), aliases.end(), wanted) != aliases.end();
  }
};

/// A library file that was found but cannot be used, and why.
struct RefusedPlugin {
  std::string file;
  std::string reason;
};

class PluginLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PluginRegistry {
 public:
  /// Folders searched, in order: `extra` (from --plugin-path), ETL_PLUGIN_PATH, then the
  /// bundled folder next to the executable (lib/etl-host/plugins, in a build tree and in an
  /// installed prefix alike).
  static std::vector<std::string> search_path(const std::vector<std::string>& extra);
  static std::string bundled_plugin_dir();

  /// Loads every `*.so` in the folders. Libraries that are not usable are kept in refused();
  /// a name provided by two files is recorded in conflicts().
  void scan(const std::vector<std::string>& directories);

  /// Loads one library and checks it. Throws PluginLoadError naming the file and the problem.
  static PluginInfo load_file(const std::string& path);

  /// The plugin called `name` (or, when `name` contains '/', the library at that path, loaded
  /// on demand). Throws PluginLoadError when there is none, listing what was refused.
  const PluginInfo& resolve(const std::string& name);

  [[nodiscard]] const std::vector<PluginInfo>& plugins() const noexcept { return plugins_; }
  [[nodiscard]] const std::vector<RefusedPlugin>& refused() const noexcept { return refused_; }
  [[nodiscard]] const std::vector<std::string>& conflicts() const noexcept { return conflicts_; }
  [[nodiscard]] const std::vector<std::string>& directories() const noexcept { return directories_; }

 private:
  std::vector<std::string> directories_;
  std::vector<PluginInfo> plugins_;
  std::deque<PluginInfo> by_path_;  // a deque: resolve() hands out references that must stay valid
  std::vector<RefusedPlugin> refused_;
  std::vector<std::string> conflicts_;
};

}  // namespace etl::host
