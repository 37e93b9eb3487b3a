#include "schema.hpp"

#include <charconv>
#include <cmath>
#include <regex>

namespace etl::host {

using nlohmann::json;

std::string pointer_token(const std::string& key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

std::string type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    case json::value_t::string: return "string";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "value";
  }
}

bool matches_type(const json& value, const std::string& type) {
  if (type == "integer") {
    if (value.is_number_integer()) return true;
    if (value.is_number_float()) {
      // Only whole numbers a 64-bit integer can hold: 1e30 is "a number", not an integer.
      const double d = value.get<double>();
      return std::isfinite(d) && std::floor(d) == d && d >= -9.2e18 && d <= 9.2e18;
    }
    return false;
  }
  if (type == "number") return value.is_number();
  if (type == "string") return value.is_string();
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "null") return value.is_null();
  return false;
}

std::vector<std::string> schema_types(const json& schema) {
  std::vector<std::string> types;
  if (!schema.is_object() || !schema.contains("type")) return types;
  const json& type = schema.at("type");
  if (type.is_string()) {
    types.push_back(type.get<std::string>());
  } else if (type.is_array()) {
    for (const auto& t : type) {
      if (t.is_string()) types.push_back(t.get<std::string>());
    }
  }
  return types;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) out += separator;
    out += items[i];
  }
  return out;
}

std::string shown(const json& value) {
  // Values may hold bytes that are not UTF-8 (from the environment): show them, never throw.
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    const std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

/// Converts a textual value to the first of `types` it parses as; nullopt when none fits.
std::optional<json> convert_text(const std::string& text, const std::vector<std::string>& types) {
  for (const auto& type : types) {
    if (type == "string") return json(text);
    if (type == "integer") {
      std::int64_t number = 0;
      const char* begin = text.data();
      const char* end = begin + text.size();
      const char* start = (begin != end && *begin == '+') ? begin + 1 : begin;
      auto [ptr, ec] = std::from_chars(start, end, number);
      if (ec == std::errc() && ptr == end && start != end) return json(number);
    } else if (type == "number") {
      double number = 0;
      auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (ec == std::errc() && ptr == text.data() + text.size() && !text.empty() &&
          std::isfinite(number))
        return json(number);
    } else if (type == "boolean") {
      if (text == "true" || text == "1" || text == "yes" || text == "on") return json(true);
      if (text == "false" || text == "0" || text == "no" || text == "off") return json(false);
    } else if (type == "null") {
      if (text == "null") return json(nullptr);
    }
  }
  return std::nullopt;
}

class Validator {
 public:
  Validator(const json& root, const ValueOrigins& origins, ValidationResult& result)
      : root_(root), origins_(origins), result_(result) {}

  void validate(const json& schema, json& value, const std::string& pointer) {
    if (!schema.is_object()) return;  // `true` / empty schema: anything goes
    if (schema.contains("$ref")) {
      const std::string ref = schema.at("$ref").get<std::string>();
      if (!ref.starts_with("#")) {
        fail(pointer, "schema reference " + ref + " is not local (only #/... is supported)");
        return;
      }
      try {
        validate(root_.at(json::json_pointer(ref.substr(1))), value, pointer);
      } catch (const json::exception&) {
        fail(pointer, "schema reference " + ref + " does not resolve");
      }
    }
    const auto types = schema_types(schema);

    if (!types.empty() && value.is_string() && origins_.textual.count(pointer) != 0) {
      if (auto converted = convert_text(value.get<std::string>(), types)) value = *converted;
    }

    if (!types.empty()) {
      bool matched = false;
      for (const auto& type : types) matched = matched || matches_type(value, type);
      if (!matched) {
        fail(pointer, "expected " + join(types, " or ") + ", got " + type_name(value) + " " +
                          shown(value) + origin(pointer));
        return;
      }
      if (value.is_number_float() &&
          std::find(types.begin(), types.end(), "integer") != types.end() &&
          std::find(types.begin(), types.end(), "number") == types.end()) {
        value = static_cast<std::int64_t>(value.get<double>());
      }
    }

    if (schema.contains("enum")) {
      const json& options = schema.at("enum");
      if (std::find(options.begin(), options.end(), value) == options.end()) {
        std::vector<std::string> allowed;
        for (const auto& option : options) allowed.push_back(shown(option));
        fail(pointer, "must be one of " + join(allowed, ", ") + ", got " + shown(value) +
                          origin(pointer));
      }
    }
    if (schema.contains("const") && schema.at("const") != value) {
      fail(pointer, "must be " + schema.at("const").dump() + ", got " + shown(value));
    }

    if (value.is_number()) check_number(schema, value, pointer);
    if (value.is_string()) check_string(schema, value.get_ref<const std::string&>(), pointer);
    if (value.is_array()) check_array(schema, value, pointer);
    if (value.is_object()) check_object(schema, value, pointer);

    if (schema.contains("anyOf")) check_alternatives(schema.at("anyOf"), value, pointer, false);
    if (schema.contains("oneOf")) check_alternatives(schema.at("oneOf"), value, pointer, true);

    if (schema.value("secret", false) && value.is_string()) {
      result_.secrets.push_back(value.get<std::string>());
    }
  }

 private:
  void fail(const std::string& pointer, std::string message) {
    result_.diagnostics.push_back(Diagnostic{pointer.empty() ? "/" : pointer, std::move(message)});
  }

  std::string origin(const std::string& pointer) const {
    const auto it = origins_.described.find(pointer);
    return it == origins_.described.end() ? std::string() : " (" + it->second + ")";
  }

  void check_number(const json& schema, const json& value, const std::string& pointer) {
    const double number = value.get<double>();
    if (schema.contains("minimum") && number < schema.at("minimum").get<double>()) {
      fail(pointer, "must be at least " + schema.at("minimum").dump() + ", got " + value.dump() +
                        origin(pointer));
    }
    if (schema.contains("maximum") && number > schema.at("maximum").get<double>()) {
      fail(pointer, "must be at most " + schema.at("maximum").dump() + ", got " + value.dump() +
                        origin(pointer));
    }
    if (schema.contains("exclusiveMinimum") &&
        number <= schema.at("exclusiveMinimum").get<double>()) {
      fail(pointer, "must be greater than " + schema.at("exclusiveMinimum").dump() + ", got " +
                        value.dump() + origin(pointer));
    }
    if (schema.contains("exclusiveMaximum") &&
        number >= schema.at("exclusiveMaximum").get<double>()) {
      fail(pointer, "must be less than " + schema.at("exclusiveMaximum").dump() + ", got " +
                        value.dump() + origin(pointer));
    }
  }

  void check_string(const json& schema, const std::string& text, const std::string& pointer) {
    if (!valid_utf8(text)) {
      // JSON text (and the plugins' configs) must be UTF-8; a stray byte usually means a
      // variable was set from a file in another encoding.
      fail(pointer, "is not valid UTF-8" + origin(pointer));
      return;
    }
    if (schema.contains("minLength") && text.size() < schema.at("minLength").get<std::size_t>()) {
      fail(pointer, text.empty() ? "must not be empty" + origin(pointer)
                                 : "must be at least " + schema.at("minLength").dump() +
                                       " characters long" + origin(pointer));
    }
    if (schema.contains("maxLength") && text.size() > schema.at("maxLength").get<std::size_t>()) {
      fail(pointer, "must be at most " + schema.at("maxLength").dump() + " characters long");
    }
    if (schema.contains("pattern")) {
      const std::string pattern = schema.at("pattern").get<std::string>();
      try {
        if (!std::regex_search(text, std::regex(pattern, std::regex::ECMAScript))) {
          const bool secret = schema.value("secret", false);
          fail(pointer, (secret ? std::string("value") : "\"" + text + "\"") +
                            " does not match the pattern " + pattern);
        }
      } catch (const std::regex_error&) {
        fail(pointer, "schema pattern " + pattern + " is not a valid regular expression");
      }
    }
  }

  void check_array(const json& schema, json& value, const std::string& pointer) {
    if (schema.contains("minItems") && value.size() < schema.at("minItems").get<std::size_t>()) {
      fail(pointer, "must have at least " + schema.at("minItems").dump() + " item(s)");
    }
    if (schema.contains("maxItems") && value.size() > schema.at("maxItems").get<std::size_t>()) {
      fail(pointer, "must have at most " + schema.at("maxItems").dump() + " item(s)");
    }
    if (schema.contains("items")) {
      for (std::size_t i = 0; i < value.size(); ++i) {
        validate(schema.at("items"), value[i], pointer + "/" + std::to_string(i));
      }
    }
  }

  void check_object(const json& schema, json& value, const std::string& pointer) {
    static const json kEmpty = json::object();
    const json& properties = schema.contains("properties") ? schema.at("properties") : kEmpty;

    for (const auto& [key, property_schema] : properties.items()) {
      if (!value.contains(key) && property_schema.is_object() &&
          property_schema.contains("default")) {
        value[key] = property_schema.at("default");
      }
    }
    if (schema.contains("required")) {
      for (const auto& key : schema.at("required")) {
        const auto name = key.get<std::string>();
        if (!value.contains(name)) {
          fail(pointer + "/" + pointer_token(name), "required key \"" + name + "\" is missing");
        }
      }
    }
    const json additional =
        schema.contains("additionalProperties") ? schema.at("additionalProperties") : json(true);
    std::vector<std::string> allowed;
    for (const auto& [key, unused] : properties.items()) allowed.push_back(key);

    for (auto& [key, member] : value.items()) {
      const std::string child = pointer + "/" + pointer_token(key);
      if (properties.contains(key)) {
        validate(properties.at(key), member, child);
      } else if (additional.is_boolean() && !additional.get<bool>()) {
        fail(child, "unknown key \"" + key + "\"; allowed keys: " + join(allowed, ", "));
      } else if (additional.is_object()) {
        validate(additional, member, child);
      }
    }
  }

  /// Tries each alternative schema on a copy of `value`; the first match wins for anyOf, the
  /// only match for oneOf. A matching alternative's defaults, conversions and secrets are kept.
  void check_alternatives(const json& alternatives, json& value, const std::string& pointer, bool exactly_one) {
    std::size_t matches = 0;
    json matched;
    ValidationResult matched_result;
    std::vector<std::string> reasons;
    for (const auto& alternative : alternatives) {
      json candidate = value;
      ValidationResult trial;
      Validator(root_, origins_, trial).validate(alternative, candidate, pointer);
      if (!trial.diagnostics.empty()) {
        if (reasons.size() < 3) reasons.push_back(trial.diagnostics.front().pointer + ": " + trial.diagnostics.front().message);
        continue;
      }
      if (++matches == 1) {
        matched = std::move(candidate);
        matched_result = std::move(trial);
      }
      if (!exactly_one) break;
    }
    if (matches == 0) {
      fail(pointer, "matches none of the allowed forms (" + join(reasons, "; ") + ")");
    } else if (exactly_one && matches > 1) {
      fail(pointer, "matches more than one of the allowed forms");
    } else {
      value = std::move(matched);
      result_.secrets.insert(result_.secrets.end(), matched_result.secrets.begin(), matched_result.secrets.end());
    }
  }

  const json& root_;
  const ValueOrigins& origins_;
  ValidationResult& result_;
};

void check_schema_node(const json& schema, const std::string& where,
                       std::vector<std::string>& problems) {
  if (schema.is_boolean()) return;
  if (!schema.is_object()) {
    problems.push_back(where + ": a schema must be an object or a boolean");
    return;
  }
  static const std::set<std::string> known_types = {"string", "integer", "number", "boolean",
                                                    "object", "array",   "null"};
  for (const auto& type : schema_types(schema)) {
    if (known_types.count(type) == 0) problems.push_back(where + ": unknown type \"" + type + "\"");
  }
  if (schema.contains("properties")) {
    if (!schema.at("properties").is_object()) {
      problems.push_back(where + "/properties: must be an object");
    } else {
      for (const auto& [key, child] : schema.at("properties").items()) {
        check_schema_node(child, where + "/properties/" + pointer_token(key), problems);
      }
    }
  }
  if (schema.contains("required") && !schema.at("required").is_array()) {
    problems.push_back(where + "/required: must be an array of names");
  }
  for (const char* key : {"items", "additionalProperties"}) {
    if (schema.contains(key)) check_schema_node(schema.at(key), where + "/" + key, problems);
  }
  if (schema.contains("anyOf")) {
    if (!schema.at("anyOf").is_array()) {
      problems.push_back(where + "/anyOf: must be an array");
    } else {
      for (std::size_t i = 0; i < schema.at("anyOf").size(); ++i) {
        check_schema_node(schema.at("anyOf")[i], where + "/anyOf/" + std::to_string(i), problems);
      }
    }
  }
}

}  // namespace

void validate_against_schema(const json& schema, json& value, const std::string& pointer,
                             const ValueOrigins& origins, ValidationResult& result) {
  Validator(schema, origins, result).validate(schema, value, pointer);
}

std::vector<std::string> check_schema(const json& schema) {
  std::vector<std::string> problems;
  check_schema_node(schema, "#", problems);
  if (problems.empty() && schema.is_object()) {
    const auto types = schema_types(schema);
    if (types.size() != 1 || types.front() != "object") {
      problems.push_back("#: a config schema must have \"type\": \"object\"");
    }
  }
  return problems;
}

json redact_secrets(const json& schema, const json& value) {
  if (!schema.is_object()) return value;
  if (schema.value("secret", false) && !value.is_null()) return "***";
  json copy = value;
  if (value.is_object() && schema.contains("properties")) {
    for (auto& [key, member] : copy.items()) {
      if (schema.at("properties").contains(key)) {
        member = redact_secrets(schema.at("properties").at(key), member);
      }
    }
  }
  return copy;
}

}  // namespace etl::host
