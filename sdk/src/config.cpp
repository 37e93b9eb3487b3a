// SPDX-License-Identifier: MIT
// The compiled half of etl/sdk/config.hpp: schemas and configs as JSON (nlohmann's
// ordered_json, so that keys keep the order they were declared or written in). Nothing here is
// visible outside the plugin that links it (hidden visibility), so each plugin carries its own
// copy and the JSON library never crosses the plugin boundary.

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "etl/sdk/config.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

using Json = nlohmann::ordered_json;

namespace {

const Json& node(const void* pointer) { return *static_cast<const Json*>(pointer); }

[[noreturn]] void wrong_type(const Json& value, const char* expected) {
  throw std::invalid_argument(std::string("expected ") + expected + ", got " + std::string(value.type_name()) +
                              (value.is_primitive() && !value.is_null() ? " " + value.dump() : std::string()));
}

Json parse_json(std::string_view text, const char* what) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    throw std::invalid_argument(std::string(what) + " is not JSON (" + e.what() + "): " + std::string(text));
  }
}

Json schema_of(const config_detail::Shape& shape, std::size_t depth = 0) {
  if (depth < shape.containers.size()) {
    const Json inner = schema_of(shape, depth + 1);
    if (shape.containers[depth] == config_detail::Container::array) return Json{{"type", "array"}, {"items", inner}};
    return Json{{"type", "object"}, {"additionalProperties", inner}};
  }
  switch (shape.scalar) {
    case config_detail::Scalar::boolean: return Json{{"type", "boolean"}};
    case config_detail::Scalar::integer: return Json{{"type", "integer"}};
    case config_detail::Scalar::unsigned_integer: return Json{{"type", "integer"}, {"minimum", 0}};
    case config_detail::Scalar::number: return Json{{"type", "number"}};
    case config_detail::Scalar::string: return Json{{"type", "string"}};
    case config_detail::Scalar::any: return Json::object();
  }
  return Json::object();
}

/// A whole number written as one (5, not 5.0), so that schemas read as they were declared.
Json number_json(double value) {
  if (std::isfinite(value) && std::trunc(value) == value && std::fabs(value) < 9.0e15) {
    return Json(static_cast<std::int64_t>(value));
  }
  return Json(value);
}

}  // namespace

ConfigValue::Type ConfigValue::type() const noexcept {
  const Json& value = node(node_);
  switch (value.type()) {
    case Json::value_t::boolean: return Type::boolean;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return Type::integer;
    case Json::value_t::number_float: return Type::number;
    case Json::value_t::string: return Type::string;
    case Json::value_t::array: return Type::array;
    case Json::value_t::object: return Type::object;
    default: return Type::null;
  }
}

std::string_view ConfigValue::type_name() const noexcept {
  switch (type()) {
    case Type::null: return "null";
    case Type::boolean: return "boolean";
    case Type::integer: return "integer";
    case Type::number: return "number";
    case Type::string: return "string";
    case Type::array: return "array";
    case Type::object: return "object";
  }
  return "null";
}

bool ConfigValue::as_bool() const {
  const Json& value = node(node_);
  if (!value.is_boolean()) wrong_type(value, "a boolean");
  return value.get<bool>();
}

std::int64_t ConfigValue::as_int() const {
  const Json& value = node(node_);
  if (value.is_number_unsigned()) {
    const auto number = value.get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw std::out_of_range(std::to_string(number) + " is too large");
    }
    return static_cast<std::int64_t>(number);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (std::trunc(number) == number && std::fabs(number) < 9.2e18) return static_cast<std::int64_t>(number);
  }
  wrong_type(value, "an integer");
}

std::uint64_t ConfigValue::as_uint() const {
  const Json& value = node(node_);
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  const std::int64_t number = as_int();
  if (number < 0) throw std::out_of_range(std::to_string(number) + " is below 0");
  return static_cast<std::uint64_t>(number);
}

double ConfigValue::as_number() const {
  const Json& value = node(node_);
  if (!value.is_number()) wrong_type(value, "a number");
  return value.get<double>();
}

const std::string& ConfigValue::as_string() const {
  const Json& value = node(node_);
  if (!value.is_string()) wrong_type(value, "a string");
  return value.get_ref<const std::string&>();
}

std::size_t ConfigValue::size() const noexcept {
  const Json& value = node(node_);
  return value.is_array() || value.is_object() ? value.size() : 0;
}

ConfigValue ConfigValue::operator[](std::size_t index) const {
  const Json& value = node(node_);
  if (!value.is_array()) wrong_type(value, "an array");
  return ConfigValue(&value.at(index));
}

std::vector<std::string> ConfigValue::keys() const {
  const Json& value = node(node_);
  if (!value.is_object()) wrong_type(value, "an object");
  std::vector<std::string> names;
  names.reserve(value.size());
  for (const auto& [name, member] : value.items()) names.push_back(name);
  return names;
}

std::optional<ConfigValue> ConfigValue::find(std::string_view key) const {
  const Json& value = node(node_);
  if (!value.is_object()) return std::nullopt;
  const auto found = value.find(std::string(key));
  if (found == value.end()) return std::nullopt;
  return ConfigValue(&*found);
}

ConfigValue ConfigValue::at(std::string_view key) const {
  const Json& value = node(node_);
  if (!value.is_object()) wrong_type(value, "an object");
  const auto found = find(key);
  if (!found) throw std::invalid_argument("the key \"" + std::string(key) + "\" is missing");
  return *found;
}

std::string ConfigValue::json_text() const {
  return node(node_).dump(-1, ' ', false, Json::error_handler_t::replace);
}

namespace config_detail {

std::string json_string(std::string_view text) { return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string json_number(double number) { return number_json(number).dump(); }

struct KeySchema::Impl {
  Json schema = Json::object();
};

KeySchema::KeySchema() : impl_(std::make_unique<Impl>()) {}
KeySchema::KeySchema(const Shape& shape) : impl_(std::make_unique<Impl>()) { impl_->schema = schema_of(shape); }
KeySchema::~KeySchema() = default;

void KeySchema::set_number(std::string_view keyword, double value) { impl_->schema[std::string(keyword)] = number_json(value); }
void KeySchema::set_bool(std::string_view keyword, bool value) { impl_->schema[std::string(keyword)] = value; }
void KeySchema::set_string(std::string_view keyword, std::string_view value) {
  impl_->schema[std::string(keyword)] = std::string(value);
}
void KeySchema::set_strings(std::string_view keyword, const std::vector<std::string>& values) {
  impl_->schema[std::string(keyword)] = values;
}
void KeySchema::set_integers(std::string_view keyword, const std::vector<std::int64_t>& values) {
  impl_->schema[std::string(keyword)] = values;
}
void KeySchema::set_json(std::string_view keyword, std::string_view json_text) {
  impl_->schema[std::string(keyword)] = parse_json(json_text, "a schema value");
}
void KeySchema::merge(std::string_view json_object_text) {
  Json keywords = parse_json(json_object_text, "a schema");
  if (!keywords.is_object()) throw std::invalid_argument("a schema must be a JSON object: " + std::string(json_object_text));
  for (auto& [name, value] : keywords.items()) impl_->schema[name] = std::move(value);
}
void KeySchema::erase(std::string_view keyword) { impl_->schema.erase(std::string(keyword)); }
std::string KeySchema::text() const { return impl_->schema.dump(); }

struct SchemaDocument::Impl {
  Json properties = Json::object();
  Json required = Json::array();
};

SchemaDocument::SchemaDocument() : impl_(std::make_unique<Impl>()) {}
SchemaDocument::~SchemaDocument() = default;

void SchemaDocument::add(std::string_view name, const KeySchema& schema, bool required) {
  impl_->properties[std::string(name)] = schema.impl_->schema;
  if (required) impl_->required.push_back(std::string(name));
}

std::string SchemaDocument::text() const {
  Json schema{{"type", "object"}, {"additionalProperties", false}, {"properties", impl_->properties}};
  if (!impl_->required.empty()) schema["required"] = impl_->required;
  return schema.dump();
}

struct ConfigDocument::Impl {
  Json root;
};

ConfigDocument::ConfigDocument(std::string_view json_text) : impl_(std::make_unique<Impl>()) {
  impl_->root = parse_json(json_text, "the config");
  if (!impl_->root.is_object()) throw std::invalid_argument("the config is not a JSON object");
}
ConfigDocument::~ConfigDocument() = default;
ConfigValue ConfigDocument::root() const noexcept { return ConfigValue(&impl_->root); }

void rethrow_for_key(const std::string& name) {
  try {
    throw;
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError("/" + name, name + ": " + e.what());
  }
}

std::string schema_or_error(const std::function<std::string()>& make) {
  try {
    return make();
  } catch (const std::exception& e) {
    // The host refuses a plugin whose schema carries this key, with the message.
    return Json{{"x-etl-schema-error", e.what()}}.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

}  // namespace config_detail
}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
