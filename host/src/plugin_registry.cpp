#include "plugin_registry.hpp"

#include <fstream>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <boost/dll/import.hpp>
#include <boost/dll/library_info.hpp>
#include <boost/dll/runtime_symbol_info.hpp>

#include "schema.hpp"

namespace etl::host {

namespace fs = std::filesystem;
using nlohmann::json;

json PluginInfo::to_json() const {
  return json{{"name", name},
              {"kind", std::string(sdk::to_string(kind))},
              {"version", version},
              {"abi_version", abi_version},
              {"sdk_version", sdk_version},
              {"description", description},
              {"aliases", aliases},
              {"file", file},
              {"config_schema", schema}};
}

std::optional<std::string> PluginInfo::newer_sdk_warning() const {
  unsigned major = 0, minor = 0;
  if (std::sscanf(sdk_version.c_str(), "%u.%u", &major, &minor) != 2) return std::nullopt;
  if (major != ETL_SDK_VERSION_MAJOR || minor <= ETL_SDK_VERSION_MINOR) return std::nullopt;
  return "plugin '" + name + "' (" + file + ") was built with SDK " + sdk_version + ", newer than this etl-host's " +
         ETL_SDK_VERSION_STRING + ": it may use what this host does not provide; update etl-host, or rebuild the "
         "plugin against SDK " + ETL_SDK_VERSION_STRING;
}

std::string PluginRegistry::bundled_plugin_dir() {
  const fs::path executable = boost::dll::program_location().string();
  return (executable.parent_path().parent_path() / "lib" / "etl-host" / "plugins").string();
}

std::vector<std::string> PluginRegistry::search_path(const std::vector<std::string>& extra) {
  std::vector<std::string> directories = extra;
  if (const char* env = std::getenv("ETL_PLUGIN_PATH"); env != nullptr) {
    std::istringstream in(env);
    std::string dir;
    while (std::getline(in, dir, ':')) {
      if (!dir.empty()) directories.push_back(dir);
    }
  }
  directories.push_back(bundled_plugin_dir());
  return directories;
}

namespace {


/// "uid 65534 (nobody)", or "uid 65534" when the user has no name here.
std::string describe_owner(uid_t uid) {
  std::string text = "uid " + std::to_string(uid);
  if (const passwd* user = ::getpwuid(uid); user != nullptr && user->pw_name != nullptr) {
    text += std::string(" (") + user->pw_name + ")";
  }
  return text;
}

/// Whoever may write a plugin or a folder above it can run their code inside our process.
void refuse_if_others_can_replace(const std::string& shown, const fs::path& file) {
  const uid_t self = ::geteuid();
  auto trusted_owner = [self](uid_t owner) { return owner == 0 || owner == self; };
  const std::string rule =
      ": plugins and their folders must belong to root or to the user running etl-host (" + describe_owner(self) + ")";
  struct stat info {};
  if (::stat(file.c_str(), &info) != 0) throw PluginLoadError(shown + ": cannot read the plugin file's permissions");
  if ((info.st_mode & S_IWOTH) != 0) {
    throw PluginLoadError(shown + ": refusing to load a plugin file that anyone can write to (chmod o-w)");
  }
  if (!trusted_owner(info.st_uid)) {
    throw PluginLoadError(shown + ": refusing to load a plugin file owned by " + describe_owner(info.st_uid) + rule);
  }
  for (fs::path dir = file.parent_path(); !dir.empty(); dir = dir.parent_path()) {
    if (::stat(dir.c_str(), &info) == 0) {
      // A sticky folder (/tmp) lets no one rename what others own: it passes when its owner,
      // who could, is trusted.
      if ((info.st_mode & S_IWOTH) != 0 && (info.st_mode & S_ISVTX) == 0) {
        throw PluginLoadError(shown + ": refusing to load a plugin from under folder " + dir.string() +
                              ", which anyone can write to (chmod o-w)");
      }
      if (!trusted_owner(info.st_uid)) {
        throw PluginLoadError(shown + ": refusing to load a plugin from under folder " + dir.string() + ", owned by " +
                              describe_owner(info.st_uid) + rule);
      }
    }
    if (dir == dir.root_path()) break;
  }
}

/// A library anyone can replace would run their code inside our process. Every folder on the
/// way to it counts, as for ssh and sudo: whoever can write to an ancestor can rename the
/// folders below it and put their own library in place. Both ways to the file are checked, the
/// path as given (its symlinks' folders) and the real path (where a symlink leads), and the
/// real path is what is loaded, so that a symlink changed after the check changes nothing.
fs::path trusted_real_path(const std::string& path) {
  std::error_code ec;
  fs::path given = fs::absolute(path, ec);
  if (ec) given = fs::path(path);
  refuse_if_others_can_replace(path, given.lexically_normal());
  const fs::path real = fs::canonical(given, ec);
  if (ec) throw PluginLoadError(path + ": cannot resolve the plugin's real path: " + ec.message());
  if (real != given.lexically_normal()) refuse_if_others_can_replace(path + " (really " + real.string() + ")", real);
  return real;
}

/// Whether the file starts like an ELF object; anything else (a README, a script) gets a
/// plain answer instead of the ELF reader's stream error.
bool looks_like_elf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  return in.read(magic, 4) && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

bool null_or_empty(const char* text) { return text == nullptr || *text == '\0'; }

/// Reads the ABI version from the name of the library's etl_abi_v<N> section, without loading
/// the library: a plugin built for another ABI must not get to run even its static initializers.
void check_abi_marker(const std::string& path) {
  if (!looks_like_elf(path)) {
    throw PluginLoadError(path + ": not a plugin: the file is not a shared library (no ELF header)");
  }
  std::vector<std::string> sections;
  try {
    boost::dll::library_info info(path);
    sections = info.sections();
  } catch (const std::exception& e) {
    throw PluginLoadError(path + ": not a loadable shared library: " + e.what());
  }
  constexpr std::string_view prefix = "etl_abi_v";
  for (const auto& section : sections) {
    if (!section.starts_with(prefix)) continue;
    const std::string version = section.substr(prefix.size());
    if (version != std::to_string(sdk::kAbiVersion)) {
      throw PluginLoadError(path + ": plugin was built for SDK ABI version " + version +
                            ", but this etl-host uses SDK ABI version " + std::to_string(sdk::kAbiVersion) +
                            "; rebuild the plugin against SDK " + ETL_SDK_VERSION_STRING +
                            (version == "1" ? " (ABI 1 is SDK 0.x: see \"Migrating from SDK 0.x\" in the plugin guide)" : "") +
                            " (it was not loaded)");
    }
    return;
  }
  throw PluginLoadError(path + ": not an etl-host plugin (it has no " + std::string(prefix) +
                        "<N> section; plugins declare themselves with ETL_PLUGIN)");
}

}  // namespace

PluginInfo PluginRegistry::load_file(const std::string& path) {
  if (!fs::exists(path)) throw PluginLoadError(path + ": no such plugin file");
  const std::string real = trusted_real_path(path).string();

  check_abi_marker(real);

  boost::dll::shared_library library;
  try {
    // RTLD_LOCAL keeps each plugin's symbols to itself, so two plugins can bundle different
    // helpers with the same names.
    library.load(real, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginLoadError(path + ": not a loadable shared library: " + e.what());
  }
  if (!library.has(sdk::kDescriptorSymbol)) {
    throw PluginLoadError(path + ": not an etl-host plugin (it exports no " +
                          std::string(sdk::kDescriptorSymbol) + " symbol)");
  }
  boost::shared_ptr<const sdk::PluginDescriptor> descriptor =
      boost::dll::import_alias<const sdk::PluginDescriptor>(library, sdk::kDescriptorSymbol);
  if (!descriptor) throw PluginLoadError(path + ": the plugin descriptor is null");

  // Only the stable header (magic, abi_version, name) may be read before the ABI matches.
  if (descriptor->magic != sdk::kDescriptorMagic) {
    throw PluginLoadError(path + ": not an etl-host plugin (bad descriptor magic)");
  }
  const std::string name = null_or_empty(descriptor->name) ? "?" : descriptor->name;
  if (descriptor->abi_version != sdk::kAbiVersion) {
    throw PluginLoadError(path + ": plugin '" + name + "' was built for SDK ABI version " +
                          std::to_string(descriptor->abi_version) +
                          ", but this etl-host uses SDK ABI version " +
                          std::to_string(sdk::kAbiVersion) + "; rebuild the plugin against SDK " +
                          ETL_SDK_VERSION_STRING);
  }
  if (name == "?") throw PluginLoadError(path + ": the plugin descriptor has no name");
  if (descriptor->size < sizeof(sdk::PluginDescriptor)) {
    throw PluginLoadError(path + ": plugin '" + name + "' has a descriptor of " + std::to_string(descriptor->size) +
                          " bytes where SDK ABI " + std::to_string(sdk::kAbiVersion) + " has " +
                          std::to_string(sizeof(sdk::PluginDescriptor)) + "; rebuild it against SDK " +
                          ETL_SDK_VERSION_STRING);
  }

  PluginInfo info;
  info.file = path;
  info.name = name;
  info.kind = descriptor->kind;
  info.abi_version = descriptor->abi_version;
  info.version = null_or_empty(descriptor->version) ? "0" : descriptor->version;
  info.sdk_version = null_or_empty(descriptor->sdk_version) ? "?" : descriptor->sdk_version;
  info.description = null_or_empty(descriptor->description) ? "" : descriptor->description;
  if (library.has(sdk::kAliasesSymbol)) {
    // A null-terminated array of names; bounded, so a missing terminator cannot run away.
    const char* const* aliases = &library.get<const char* const>(sdk::kAliasesSymbol);
    for (std::size_t i = 0; i < 16 && aliases[i] != nullptr; ++i) {
      if (*aliases[i] == '\0' || aliases[i] == name) continue;
      info.aliases.emplace_back(aliases[i]);
    }
  }

  const bool factory_matches =
      (info.kind == sdk::PluginKind::source && descriptor->create_source != nullptr) ||
      (info.kind == sdk::PluginKind::sink && descriptor->create_sink != nullptr) ||
      (info.kind == sdk::PluginKind::reporter && descriptor->create_reporter != nullptr) ||
      (info.kind == sdk::PluginKind::transform && descriptor->create_transform != nullptr);
  if (!factory_matches) {
    throw PluginLoadError(path + ": plugin '" + name +
                          "' has no factory for its declared kind");
  }
  if (const std::string_view schema = null_or_empty(descriptor->config_schema) ? "" : descriptor->config_schema;
      schema.find("\"x-etl-schema-error\"") != std::string_view::npos) {
    const json refused = json::parse(schema, nullptr, false);
    throw PluginLoadError(path + ": plugin '" + name + "' declares a config the SDK could not turn into a schema: " +
                          (refused.is_object() ? refused.value("x-etl-schema-error", "") : std::string(schema)));
  }
  try {
    info.schema = json::parse(null_or_empty(descriptor->config_schema)
                                  ? R"({"type":"object","additionalProperties":false})"
                                  : descriptor->config_schema);
  } catch (const json::exception& e) {
    throw PluginLoadError(path + ": plugin '" + name + "' has a config schema that is not JSON: " +
                          e.what());
  }
  if (const auto problems = check_schema(info.schema); !problems.empty()) {
    throw PluginLoadError(path + ": plugin '" + name + "' has an unusable config schema: " +
                          problems.front());
  }
  // The std::shared_ptr holds the Boost one (and with it the library) until its last copy goes.
  const sdk::PluginDescriptor* raw = descriptor.get();
  info.descriptor = std::shared_ptr<const sdk::PluginDescriptor>(raw, [keep = std::move(descriptor)](const sdk::PluginDescriptor*) {});
  return info;
}

void PluginRegistry::scan(const std::vector<std::string>& directories) {
  directories_ = directories;
  for (const auto& directory : directories) {
    std::error_code ec;
    if (!fs::is_directory(directory, ec)) continue;
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
      if (entry.path().extension() == ".so") files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      try {
        PluginInfo info = load_file(file);
        const auto existing = std::find_if(plugins_.begin(), plugins_.end(), [&](const PluginInfo& p) {
          return p.answers_to(info.name) || std::any_of(info.aliases.begin(), info.aliases.end(),
                                                        [&](const std::string& alias) { return p.answers_to(alias); });
        });
        if (existing != plugins_.end()) {
          // The same file reached through two search-path entries is not a conflict.
          if (fs::equivalent(existing->file, info.file, ec)) continue;
          conflicts_.push_back("plugin name '" + info.name + "' is provided by both " +
                               existing->file + " and " + info.file);
          continue;
        }
        plugins_.push_back(std::move(info));
      } catch (const PluginLoadError& e) {
        refused_.push_back(RefusedPlugin{file, e.what()});
      }
    }
  }
}

const PluginInfo& PluginRegistry::resolve(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    for (const auto& info : by_path_) {
      if (info.file == name) return info;
    }
    by_path_.push_back(load_file(name));
    return by_path_.back();
  }
  for (const auto& conflict : conflicts_) {
    if (conflict.starts_with("plugin name '" + name + "' ")) throw PluginLoadError(conflict);
  }
  for (const auto& info : plugins_) {
    if (info.answers_to(name)) return info;
  }
  std::string message = "unknown plugin '" + name + "'";
  std::vector<std::string> names;
  for (const auto& info : plugins_) {
    names.push_back(info.name);
    names.insert(names.end(), info.aliases.begin(), info.aliases.end());
  }
  if (const auto typo = closest_word(name, names)) message += " (did you mean '" + *typo + "'?)";
  std::vector<std::string> known;
  for (const auto& info : plugins_) known.push_back(info.name);
  std::sort(known.begin(), known.end());
  message += "; available: ";
  for (std::size_t i = 0; i < known.size(); ++i) message += (i ? ", " : "") + known[i];
  if (known.empty()) message += "none";
  std::string searched;
  for (const auto& dir : directories_) searched += (searched.empty() ? "" : ":") + dir;
  message += " (searched " + searched + ")";
  for (const auto& refused : refused_) message += "; refused " + refused.reason;
  throw PluginLoadError(message);
}

}  // namespace etl::host
