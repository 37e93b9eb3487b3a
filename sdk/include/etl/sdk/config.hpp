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
/// (`etl-host plugins NAME`). Keys keep their declaration order in the schema and the table.
///
/// No JSON library is part of this header: schemas and configs are built and read by the SDK
/// library (libetl-sdk, linked by etl_add_plugin), and a structured key is read through
/// ConfigValue. A plugin that wants nlohmann::json members or conversions includes
/// etl/sdk/json.hpp.

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "etl/sdk/plugin.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// A read-only view of one JSON value in a plugin's config, valid while the config is parsed
/// (inside ConfigMap::parse and the callbacks it calls). Accessors of the wrong type throw
/// std::invalid_argument saying what was expected and what was found.
class ConfigValue {
 public:
  enum class Type : std::uint8_t { null, boolean, integer, number, string, array, object };

  [[nodiscard]] Type type() const noexcept;
  /// "null", "boolean", "integer", "number", "string", "array" or "object".
  [[nodiscard]] std::string_view type_name() const noexcept;
  [[nodiscard]] bool is_null() const noexcept { return type() == Type::null; }
  [[nodiscard]] bool is_string() const noexcept { return type() == Type::string; }
  [[nodiscard]] bool is_array() const noexcept { return type() == Type::array; }
  [[nodiscard]] bool is_object() const noexcept { return type() == Type::object; }

  [[nodiscard]] bool as_bool() const;
  /// An integer (a number with a fraction is refused); throws when it does not fit.
  [[nodiscard]] std::int64_t as_int() const;
  [[nodiscard]] std::uint64_t as_uint() const;
  /// Any number.
  [[nodiscard]] double as_number() const;
  [[nodiscard]] const std::string& as_string() const;

  /// Elements of an array, members of an object; 0 for anything else.
  [[nodiscard]] std::size_t size() const noexcept;
  /// Element `index` of an array (throws std::out_of_range past its end).
  [[nodiscard]] ConfigValue operator[](std::size_t index) const;
  /// The member names of an object, in the order the document gives them.
  [[nodiscard]] std::vector<std::string> keys() const;
  /// Member `key` of an object, or nullopt.
  [[nodiscard]] std::optional<ConfigValue> find(std::string_view key) const;
  [[nodiscard]] bool contains(std::string_view key) const { return find(key).has_value(); }
  /// Member `key` of an object; throws std::invalid_argument naming it when it is missing.
  [[nodiscard]] ConfigValue at(std::string_view key) const;

  /// The value as T (any type a ConfigMap key may have).
  template <class T>
  [[nodiscard]] T get() const;
  /// Member `key` as T, or `fallback` when the object has no such member (or it is null).
  template <class T>
  [[nodiscard]] T value(std::string_view key, T fallback) const {
    const auto found = find(key);
    return found && !found->is_null() ? found->template get<T>() : std::move(fallback);
  }

  /// The value as compact JSON text.
  [[nodiscard]] std::string json_text() const;

  /// For the SDK library: a view of a node it owns.
  explicit ConfigValue(const void* node) noexcept : node_(node) {}

 private:
  const void* node_;
};

namespace config_detail {

/// The JSON Schema shape of a member type: a scalar, inside arrays or string-keyed maps.
enum class Scalar : std::uint8_t { boolean, integer, unsigned_integer, number, string, any };
enum class Container : std::uint8_t { array, map };
struct Shape {
  Scalar scalar = Scalar::any;
  std::vector<Container> containers;  // outermost first
};

/// JSON text of scalars, for defaults (compiled in the SDK library).
std::string json_string(std::string_view text);
std::string json_number(double number);
inline std::string json_number(std::int64_t number) { return std::to_string(number); }
inline std::string json_number(std::uint64_t number) { return std::to_string(number); }

/// The JSON Schema of one key, built by the SDK library (no JSON library in this header).
class KeySchema {
 public:
  KeySchema();
  explicit KeySchema(const Shape& shape);
  KeySchema(const KeySchema&) = delete;
  KeySchema& operator=(const KeySchema&) = delete;
  ~KeySchema();

  void set_number(std::string_view keyword, double value);
  void set_bool(std::string_view keyword, bool value);
  void set_string(std::string_view keyword, std::string_view value);
  void set_strings(std::string_view keyword, const std::vector<std::string>& values);
  void set_integers(std::string_view keyword, const std::vector<std::int64_t>& values);
  /// `json_text` must be one JSON value (a default, a sub-schema); throws std::invalid_argument.
  void set_json(std::string_view keyword, std::string_view json_text);
  /// Merges the keywords of a JSON object text; throws std::invalid_argument when it is not one.
  void merge(std::string_view json_object_text);
  void erase(std::string_view keyword);
  [[nodiscard]] std::string text() const;

 private:
  friend class SchemaDocument;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A config object's schema: the declared keys, in order, with the required ones listed.
class SchemaDocument {
 public:
  SchemaDocument();
  SchemaDocument(const SchemaDocument&) = delete;
  SchemaDocument& operator=(const SchemaDocument&) = delete;
  ~SchemaDocument();
  void add(std::string_view name, const KeySchema& schema, bool required);
  [[nodiscard]] std::string text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A parsed config document; its root is an object (throws std::invalid_argument otherwise).
class ConfigDocument {
 public:
  explicit ConfigDocument(std::string_view json_text);
  ConfigDocument(const ConfigDocument&) = delete;
  ConfigDocument& operator=(const ConfigDocument&) = delete;
  ~ConfigDocument();
  [[nodiscard]] ConfigValue root() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// How a member type maps to the schema, reads from a config and states its default.
/// Specialise it for a type of your own (etl/sdk/json.hpp does so for nlohmann::json).
template <class T, class = void>
struct Traits {
  static_assert(sizeof(T) == 0, "ConfigMap: use .parse_with() for this member type");
};

template <>
struct Traits<bool> {
  static Shape shape() { return {Scalar::boolean, {}}; }
  static bool read(const ConfigValue& value) { return value.as_bool(); }
  static std::optional<std::string> default_text(bool value) { return value ? "true" : "false"; }
};

template <class T>
struct Traits<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static Shape shape() { return {std::is_unsigned_v<T> ? Scalar::unsigned_integer : Scalar::integer, {}}; }
  static T read(const ConfigValue& value) {
    if constexpr (std::is_unsigned_v<T>) {
      const std::uint64_t number = value.as_uint();
      if (number > std::numeric_limits<T>::max()) throw std::out_of_range(std::to_string(number) + " is too large");
      return static_cast<T>(number);
    } else {
      const std::int64_t number = value.as_int();
      if (number < std::numeric_limits<T>::min() || number > std::numeric_limits<T>::max()) {
        throw std::out_of_range(std::to_string(number) + " is out of range");
      }
      return static_cast<T>(number);
    }
  }
  static std::optional<std::string> default_text(T value) {
    if constexpr (std::is_unsigned_v<T>) {
      return json_number(static_cast<std::uint64_t>(value));
    } else {
      return json_number(static_cast<std::int64_t>(value));
    }
  }
};

template <class T>
struct Traits<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static Shape shape() { return {Scalar::number, {}}; }
  static T read(const ConfigValue& value) { return static_cast<T>(value.as_number()); }
  static std::optional<std::string> default_text(T value) { return json_number(static_cast<double>(value)); }
};

template <>
struct Traits<std::string> {
  static Shape shape() { return {Scalar::string, {}}; }
  static std::string read(const ConfigValue& value) { return value.as_string(); }
  static std::optional<std::string> default_text(const std::string& value) { return json_string(value); }
};

template <class T>
struct Traits<std::vector<T>> {
  static Shape shape() {
    Shape inner = Traits<T>::shape();
    inner.containers.insert(inner.containers.begin(), Container::array);
    return inner;
  }
  static std::vector<T> read(const ConfigValue& value) {
    if (!value.is_array()) throw std::invalid_argument("expected an array, got " + std::string(value.type_name()));
    std::vector<T> out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) out.push_back(Traits<T>::read(value[i]));
    return out;
  }
  static std::optional<std::string> default_text(const std::vector<T>& values) {
    std::string text = "[";
    for (const auto& item : values) {
      if (text.size() > 1) text += ',';
      text += Traits<T>::default_text(item).value_or("null");
    }
    return text + "]";
  }
};

template <class T>
struct Traits<std::map<std::string, T>> {
  static Shape shape() {
    Shape inner = Traits<T>::shape();
    inner.containers.insert(inner.containers.begin(), Container::map);
    return inner;
  }
  static std::map<std::string, T> read(const ConfigValue& value) {
    if (!value.is_object()) throw std::invalid_argument("expected an object, got " + std::string(value.type_name()));
    std::map<std::string, T> out;
    for (const auto& key : value.keys()) out.emplace(key, Traits<T>::read(value.at(key)));
    return out;
  }
  static std::optional<std::string> default_text(const std::map<std::string, T>& values) {
    std::string text = "{";
    for (const auto& [key, item] : values) {
      if (text.size() > 1) text += ',';
      text += json_string(key) + ":" + Traits<T>::default_text(item).value_or("null");
    }
    return text + "}";
  }
};

template <class T>
struct Traits<std::optional<T>> {
  static Shape shape() { return Traits<T>::shape(); }
  static std::optional<T> read(const ConfigValue& value) {
    if (value.is_null()) return std::nullopt;
    return Traits<T>::read(value);
  }
  static std::optional<std::string> default_text(const std::optional<T>& value) {
    if (!value) return std::nullopt;
    return Traits<T>::default_text(*value);
  }
};

/// Turns a failure to read key `name` into a ConfigError naming it.
[[noreturn]] void rethrow_for_key(const std::string& name);

}  // namespace config_detail

template <class T>
T ConfigValue::get() const {
  return config_detail::Traits<T>::read(*this);
}

/// The declared keys of a plugin's config (see the file comment).
template <class Config>
class ConfigMap {
 public:
  /// One declared key; its setters narrow the schema and return the key for chaining.
  class Key {
   public:
    explicit Key(const config_detail::Shape& shape) : schema_(shape) {}
    Key() = default;

    /// The key must be given (it has no default).
    Key& required() {
      required_ = true;
      schema_.erase("default");
      return *this;
    }
    /// The value is a secret: the host redacts it from logs, reports and errors.
    Key& secret() { schema_.set_bool("secret", true); return *this; }
    Key& minimum(double value) { schema_.set_number("minimum", value); return *this; }
    Key& maximum(double value) { schema_.set_number("maximum", value); return *this; }
    Key& exclusive_minimum(double value) { schema_.set_number("exclusiveMinimum", value); return *this; }
    Key& min_length(int value) { schema_.set_number("minLength", value); return *this; }
    Key& max_length(int value) { schema_.set_number("maxLength", value); return *this; }
    Key& pattern(std::string_view regex) { schema_.set_string("pattern", regex); return *this; }
    Key& one_of(const std::vector<std::string>& values) { schema_.set_strings("enum", values); return *this; }
    /// A numeric key that takes only these values.
    Key& one_of_numbers(const std::vector<std::int64_t>& values) { schema_.set_integers("enum", values); return *this; }
    /// Merges schema keywords the helpers above do not cover, as a JSON object text:
    /// `.schema(R"({"items": {"type": "string", "enum": ["ok", "failed"]}})")`.
    Key& schema(std::string_view json_keywords) { schema_.merge(json_keywords); return *this; }

   private:
    friend class ConfigMap;
    std::string name_;
    config_detail::KeySchema schema_;
    bool required_ = false;
    std::function<void(Config&, const ConfigValue&)> assign_;
  };

  ConfigMap() = default;
  ConfigMap(ConfigMap&&) noexcept = default;
  ConfigMap& operator=(ConfigMap&&) noexcept = default;

  /// Declares key `name`, stored in `member`; its default is `member`'s value in a
  /// value-initialised Config (state none with std::optional). Types: bool, integers, double,
  /// std::string, std::vector / std::map<std::string, ...> of those, std::optional of those, and
  /// any type with a config_detail::Traits specialisation.
  template <class T>
  Key& key(std::string name, T Config::*member, std::string description) {
    using Traits = config_detail::Traits<T>;
    auto key = std::make_unique<Key>(Traits::shape());
    key->name_ = std::move(name);
    key->schema_.set_string("description", description);
    const Config defaults{};
    if (auto text = Traits::default_text(defaults.*member)) key->schema_.set_json("default", *text);
    key->assign_ = [member](Config& config, const ConfigValue& value) { config.*member = Traits::read(value); };
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

  /// Declares a key whose value `parse` turns into the Config (for structured blocks);
  /// `schema_json` is the key's JSON Schema as a JSON object text.
  Key& parse_with(std::string name, std::string_view schema_json, std::string description,
                  std::function<void(Config&, const ConfigValue&)> parse) {
    auto key = std::make_unique<Key>();
    key->name_ = std::move(name);
    key->schema_.merge(schema_json);
    key->schema_.set_string("description", description);
    key->assign_ = std::move(parse);
    keys_.push_back(std::move(key));
    return *keys_.back();
  }

  /// The config's JSON Schema text (an object with exactly the declared keys, in order).
  [[nodiscard]] std::string schema() const {
    config_detail::SchemaDocument document;
    for (const auto& key : keys_) document.add(key->name_, key->schema_, key->required_);
    return document.text();
  }

  /// The Config from a config object text the host checked against schema(). A value the
  /// schema let through but the member cannot hold throws ConfigError naming the key.
  [[nodiscard]] Config parse(std::string_view config_json) const {
    const config_detail::ConfigDocument document(config_json);
    const ConfigValue root = document.root();
    Config parsed{};
    for (const auto& key : keys_) {
      const auto found = root.find(key->name_);
      if (!found) continue;
      try {
        key->assign_(parsed, *found);
      } catch (...) {
        config_detail::rethrow_for_key(key->name_);
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
    return std::make_unique<T>(map.parse(args.config_json), args.context);
  } else {
    return std::make_unique<T>(args);
  }
}

/// The schema text of T; a declaration the SDK cannot turn into a schema (a malformed
/// `.schema()` text) gives a schema the host refuses, naming the problem, instead of ending the
/// process while the library loads.
std::string schema_or_error(const std::function<std::string()>& make);

template <class T>
std::string schema_text() {
  return schema_or_error([] {
    if constexpr (has_config_map<T>::value) {
      return T::config_map().schema();
    } else {
      return std::string(T::config_schema());
    }
  });
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
