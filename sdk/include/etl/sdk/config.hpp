// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Declarative plugin configs and the ETL_PLUGIN macro.
///
/// A plugin declares each config key once, with its type, default, bounds and description:
///
///   struct Config {
///     std::string path;
///     std::string field = "line";   // the default is the member's initial value
///     std::int64_t max_line_bytes = 1 << 20;
///   };
///   class FileLines : public etl::sdk::Source {
///    public:
///     static etl::sdk::ConfigMap<Config> config_map() {
///       etl::sdk::ConfigMap<Config> map;
///       map.key("path", &Config::path, "File to read; `-` reads stdin.").required().min_length(1);
///       map.key("field", &Config::field, "Name of the field each line goes into.");
///       map.key("max_line_bytes", &Config::max_line_bytes, "Longer lines are refused.").minimum(1);
///       return map;
///     }
///     FileLines(Config config, etl::sdk::Context& context);
///     ...
///   };
///   ETL_PLUGIN(FileLines, "file-lines", "1.0.0", "One record per line of a file or stdin");
///
/// From that one declaration come the JSON Schema the host validates with (`etl-host schema`),
/// the parsed Config the constructor receives, and the README's key table
/// (`etl-host plugins --markdown NAME`). Header-only and plugin-local: nothing here crosses the
/// plugin boundary except the schema text and the descriptor.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk/plugin.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// Parses the config the host passed. The host has already validated it against the
/// plugin's schema and filled in defaults.
inline nlohmann::json parse_config(const PluginArgs& args) {
  return nlohmann::json::parse(args.config_json.begin(), args.config_json.end());
}

namespace config_detail {

template <class T> struct is_optional : std::false_type {};
template <class T> struct is_optional<std::optional<T>> : std::true_type {};
template <class T> struct is_vector : std::false_type {};
template <class T> struct is_vector<std::vector<T>> : std::true_type {};
template <class T> struct is_string_map : std::false_type {};
template <class T> struct is_string_map<std::map<std::string, T>> : std::true_type {};

/// The JSON Schema of a C++ member type.
template <class T>
nlohmann::json schema_of() {
  if constexpr (is_optional<T>::value) {
    return schema_of<typename T::value_type>();
  } else if constexpr (std::is_same_v<T, bool>) {
    return {{"type", "boolean"}};
  } else if constexpr (std::is_integral_v<T>) {
    nlohmann::json schema{{"type", "integer"}};
    if constexpr (std::is_unsigned_v<T>) schema["minimum"] = 0;
    return schema;
  } else if constexpr (std::is_floating_point_v<T>) {
    return {{"type", "number"}};
  } else if constexpr (std::is_same_v<T, std::string>) {
    return {{"type", "string"}};
  } else if constexpr (is_vector<T>::value) {
    return {{"type", "array"}, {"items", schema_of<typename T::value_type>()}};
  } else if constexpr (is_string_map<T>::value) {
    return {{"type", "object"}, {"additionalProperties", schema_of<typename T::mapped_type>()}};
  } else if constexpr (std::is_same_v<T, nlohmann::json>) {
    return nlohmann::json::object();  // anything; narrow it with .schema()
  } else {
    static_assert(sizeof(T) == 0, "ConfigMap: use .parse_with() for this member type");
  }
}

/// The member's default as JSON, or null when it has none worth stating.
template <class T>
nlohmann::json default_of(const T& value) {
  if constexpr (is_optional<T>::value) {
    return value ? default_of(*value) : nlohmann::json();
  } else if constexpr (std::is_same_v<T, nlohmann::json>) {
    return value;
  } else {
    return nlohmann::json(value);
  }
}

}  // namespace config_detail

/// The declared keys of a plugin's config (see the file comment).
template <class Config>
class ConfigMap {
 public:
  /// One declared key; its setters narrow the schema and return the key for chaining.
  class Key {
   public:
    /// The key must be given (it has no default).
    Key& required() {
      required_ = true;
      schema_.erase("default");
      return *this;
    }
    /// The value is a secret: the host redacts it from logs, reports and errors.
    Key& secret() { schema_["secret"] = true; return *this; }
    Key& minimum(double value) { schema_["minimum"] = value; return *this; }
    Key& maximum(double value) { schema_["maximum"] = value; return *this; }
    Key& exclusive_minimum(double value) { schema_["exclusiveMinimum"] = value; return *this; }
    Key& min_length(int value) { schema_["minLength"] = value; return *this; }
    Key& one_of(std::vector<std::string> values) { schema_["enum"] = std::move(values); return *this; }
    /// Merges schema keywords the helpers above do not cover (items, patterns, sub-objects).
    Key& schema(const nlohmann::json& keywords) {
      for (const auto& [name, value] : keywords.items()) schema_[name] = value;
      return *this;
    }

   private:
    friend class ConfigMap;
    std::string name_;
    nlohmann::json schema_;
    bool required_ = false;
    std::function<void(Config&, const nlohmann::json&)> assign_;
  };

  /// Declares key `name`, stored in `member`; its default is `member`'s value in a
  /// value-initialised Config (state none with std::optional). Types: bool, integers, double,
  /// std::string, std::vector / std::map<std::string, ...> of those, std::optional of those,
  /// and nlohmann::json (any value, narrowed with .schema()).
  template <class T>
  Key& key(std::string name, T Config::*member, std::string description) {
    auto key = std::make_unique<Key>();
    key->name_ = std::move(name);
    key->schema_ = config_detail::schema_of<T>();
    key->schema_["description"] = std::move(description);
    const Config defaults{};
    if (auto value = config_detail::default_of(defaults.*member); !value.is_null()) key->schema_["default"] = value;
    key->assign_ = [member](Config& config, const nlohmann::json& value) {
      if constexpr (config_detail::is_optional<T>::value) {
        config.*member = value.is_null() ? T() : T(value.get<typename T::value_type>());
      } else {
        config.*member = value.get<T>();
      }
    };
    keys_.push_back(std::move(key));
    return *keys_.back();
  }

  /// The same for a member of a base of Config: keys shared by several plugins (a connection's)
  /// live in a struct their Configs derive from, and are declared once for all of them.
  template <class T, class Base,
            std::enable_if_t<!std::is_same_v<Base, Config> && std::is_base_of_v<Base, Config>, int> = 0>
  Key& key(std::string name, T Base::*member, std::string description) {
    return key<T>(std::move(name), static_cast<T Config::*>(member), std::move(description));
  }

  /// Declares a key whose value `parse` turns into the Config (for structured blocks).
  Key& parse_with(std::string name, nlohmann::json schema, std::string description,
                  std::function<void(Config&, const nlohmann::json&)> parse) {
    auto key = std::make_unique<Key>();
    key->name_ = std::move(name);
    key->schema_ = std::move(schema);
    key->schema_["description"] = std::move(description);
    key->assign_ = std::move(parse);
    keys_.push_back(std::move(key));
    return *keys_.back();
  }

  /// The config's JSON Schema (an object with exactly the declared keys).
  [[nodiscard]] nlohmann::json schema() const {
    nlohmann::json properties = nlohmann::json::object();
    nlohmann::json required = nlohmann::json::array();
    for (const auto& key : keys_) {
      properties[key->name_] = key->schema_;
      if (key->required_) required.push_back(key->name_);
    }
    nlohmann::json schema{{"type", "object"}, {"additionalProperties", false}, {"properties", properties}};
    if (!required.empty()) schema["required"] = required;
    return schema;
  }

  /// The Config from a config object the host checked against schema(). A value the schema let
  /// through but the member cannot hold throws ConfigError naming the key.
  [[nodiscard]] Config parse(const nlohmann::json& config) const {
    Config parsed{};
    for (const auto& key : keys_) {
      const auto found = config.find(key->name_);
      if (found == config.end()) continue;
      try {
        key->assign_(parsed, *found);
      } catch (const ConfigError&) {
        throw;
      } catch (const std::exception& e) {
        throw ConfigError("/" + key->name_, key->name_ + ": " + e.what());
      }
    }
    return parsed;
  }

 private:
  std::vector<std::unique_ptr<Key>> keys_;  // stable addresses: key() hands out references
};

namespace config_detail {

template <class T, class = void> struct has_config_map : std::false_type {};
template <class T> struct has_config_map<T, std::void_t<decltype(T::config_map())>> : std::true_type {};

/// Constructs T from the host's arguments: through its ConfigMap when it declares one
/// (`T(Config, Context&)`), else `T(const PluginArgs&)`.
template <class T, class Base>
std::unique_ptr<Base> create(const PluginArgs& args) {
  if constexpr (has_config_map<T>::value) {
    static const auto map = T::config_map();
    return std::make_unique<T>(map.parse(parse_config(args)), args.context);
  } else {
    return std::make_unique<T>(args);
  }
}

template <class T>
std::string schema_text() {
  if constexpr (has_config_map<T>::value) {
    return T::config_map().schema().dump();
  } else {
    return T::config_schema();
  }
}

}  // namespace config_detail

/// The descriptor for plugin class T; the kind follows from T's base class. Used by ETL_PLUGIN.
template <class T>
PluginDescriptor make_descriptor(const char* name, const char* version, const char* description, const char* schema) {
  PluginDescriptor descriptor{};
  descriptor.magic = kDescriptorMagic;
  descriptor.abi_version = kAbiVersion;
  descriptor.name = name;
  descriptor.size = sizeof(PluginDescriptor);
  descriptor.sdk_version = ETL_SDK_VERSION_STRING;
  descriptor.version = version;
  descriptor.description = description;
  descriptor.config_schema = schema;
  if constexpr (std::is_base_of_v<Source, T>) {
    descriptor.kind = PluginKind::source;
    descriptor.create_source = &config_detail::create<T, Source>;
  } else if constexpr (std::is_base_of_v<Transform, T>) {
    descriptor.kind = PluginKind::transform;
    descriptor.create_transform = &config_detail::create<T, Transform>;
  } else if constexpr (std::is_base_of_v<Sink, T>) {
    descriptor.kind = PluginKind::sink;
    descriptor.create_sink = &config_detail::create<T, Sink>;
  } else {
    static_assert(std::is_base_of_v<Reporter, T>, "ETL_PLUGIN: the class must derive from Source, Transform, Sink or Reporter");
    descriptor.kind = PluginKind::reporter;
    descriptor.create_reporter = &config_detail::create<T, Reporter>;
  }
  return descriptor;
}

/// The run summary as JSON, as the json reporter and `etl-host run --summary-json` write it.
inline nlohmann::json summary_to_json(const Summary& s) {
  return nlohmann::json{{"requested", s.requested ? nlohmann::json(*s.requested) : nlohmann::json(nullptr)},
                        {"received", s.received},
                        {"ok", s.ok},
                        {"rejected", s.rejected},
                        {"rejected_by_stage",
                         {{"source", s.rejected_at_source}, {"transform", s.rejected_at_transform}, {"sink", s.rejected_at_sink}}},
                        {"failed", s.failed},
                        {"commit_unknown", s.commit_unknown},
                        {"seconds", s.seconds},
                        {"rows_per_second", s.rows_per_second},
                        {"completed", s.completed},
                        {"stop_reason", s.stop_reason},
                        {"exit_code", s.exit_code}};
}

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk

/// Declares plugin class `Class` (derived from Source, Transform, Sink or Reporter) as this
/// library's plugin: name, the plugin's own version, a one-line description. The config schema
/// comes from `Class::config_map()` (or, without one, `Class::config_schema()`, a JSON text).
/// Use once per library, at global namespace scope.
#define ETL_PLUGIN(Class, name, version, description)                                                        \
  namespace {                                                                                                 \
  const std::string etl_plugin_schema_text = ::etl::sdk::config_detail::schema_text<Class>();                 \
  const ::etl::sdk::PluginDescriptor etl_plugin_descriptor_value =                                            \
      ::etl::sdk::make_descriptor<Class>(name, version, description, etl_plugin_schema_text.c_str());         \
  }                                                                                                           \
  ETL_PLUGIN_DESCRIPTOR(etl_plugin_descriptor_value)
