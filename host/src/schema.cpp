#include "schema.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <set>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

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

/// The schema with boolean subschemas spelled as objects: valijson 1.0 takes `false` only as
/// additionalProperties, so `false` becomes {"not": {}} (nothing passes) and `true` becomes {}.
json with_object_subschemas(const json& schema) {
  if (schema.is_boolean()) return schema.get<bool>() ? json::object() : json{{"not", json::object()}};
  if (!schema.is_object()) return schema;
  json copy = schema;
  for (const char* keyed : {"properties", "patternProperties", "$defs", "definitions", "dependencies"}) {
    if (!copy.contains(keyed) || !copy.at(keyed).is_object()) continue;
    for (auto& [key, child] : copy.at(keyed).items()) {
      if (child.is_boolean() || child.is_object()) child = with_object_subschemas(child);
    }
  }
  for (const char* single : {"items", "additionalItems", "contains", "not", "if", "then", "else", "propertyNames"}) {
    if (copy.contains(single) && (copy.at(single).is_object() || copy.at(single).is_boolean())) {
      copy[single] = with_object_subschemas(copy.at(single));
    }
  }
  if (copy.contains("additionalProperties") && copy.at("additionalProperties").is_object()) {
    copy["additionalProperties"] = with_object_subschemas(copy.at("additionalProperties"));
  }
  for (const char* list : {"items", "anyOf", "oneOf", "allOf"}) {
    if (!copy.contains(list) || !copy.at(list).is_array()) continue;
    for (auto& child : copy.at(list)) child = with_object_subschemas(child);
  }
  return copy;
}

/// One compiled valijson schema per distinct schema text: plugin schemas are validated many
/// times (validate, run, each schedule slot), compiled once.
std::shared_ptr<const valijson::Schema> compiled(const json& schema) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const valijson::Schema>> cache;
  const std::string key = schema.dump();
  std::lock_guard lock(mutex);
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  auto parsed = std::make_shared<valijson::Schema>();
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  const json normalized = with_object_subschemas(schema);
  const valijson::adapters::NlohmannJsonAdapter adapter(normalized);
  parser.populateSchema(adapter, *parsed);  // throws on a schema it cannot use
  cache.emplace(key, parsed);
  return parsed;
}

/// Follows a local "$ref" ("#/..."); the schema itself when it has none or it does not resolve.
const json& resolved(const json& root, const json& schema) {
  const json* current = &schema;
  for (int hops = 0; hops < 16 && current->is_object() && current->contains("$ref"); ++hops) {
    const json& ref = current->at("$ref");
    if (!ref.is_string() || !ref.get_ref<const std::string&>().starts_with("#")) break;
    try {
      current = &root.at(json::json_pointer(ref.get<std::string>().substr(1)));
    } catch (const json::exception&) {
      break;
    }
  }
  return *current;
}

/// The work valijson does not do, in one walk of the value along its schema: textual values
/// (from interpolation or --set) converted to the type the schema asks for, defaults of
/// missing properties filled in, secrets collected, strings checked to be UTF-8. It judges
/// nothing else: that is valijson's.
class Preparer {
 public:
  Preparer(const json& root, const ValueOrigins& origins, ValidationResult& result)
      : root_(root), origins_(origins), result_(result) {}

  void prepare(const json& raw_schema, json& value, const std::string& pointer, int depth = 0) {
    const json& schema = resolved(root_, raw_schema);
    if (!schema.is_object() || depth > 64) return;
    const auto types = schema_types(schema);
    if (!types.empty() && value.is_string() && origins_.textual.count(pointer) != 0) {
      if (auto converted = convert_text(value.get<std::string>(), types)) value = *converted;
    }
    // A whole number written as 20.0 is taken as the integer it is.
    if (value.is_number_float() && matches_type(value, "integer") &&
        std::find(types.begin(), types.end(), "integer") != types.end() &&
        std::find(types.begin(), types.end(), "number") == types.end()) {
      value = static_cast<std::int64_t>(value.get<double>());
    }
    if (value.is_string() && !valid_utf8(value.get_ref<const std::string&>())) {
      // JSON text (and the plugins' configs) must be UTF-8; a stray byte usually means a
      // variable was set from a file in another encoding. (valijson counts bytes, not text.)
      utf8_problems_.push_back(Diagnostic{pointer.empty() ? "/" : pointer, "is not valid UTF-8" + origin(origins_, pointer)});
      // The run is refused for it already; what valijson checks next is a copy with U+FFFD for
      // each bad byte, because its UTF-8 decoder reads out of bounds on some invalid sequences
      // (found by the pipeline fuzzer: utf8_utils.hpp, "index 24 out of bounds").
      value = json::parse(value.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    if (schema.value("secret", false) && value.is_string()) result_.secrets.push_back(value.get<std::string>());
    if (value.is_object()) {
      const json* properties = schema.contains("properties") && schema.at("properties").is_object() ? &schema.at("properties") : nullptr;
      if (properties != nullptr) {
        for (const auto& [key, property] : properties->items()) {
          const json& property_schema = resolved(root_, property);
          if (!value.contains(key) && property_schema.is_object() && property_schema.contains("default")) {
            value[key] = property_schema.at("default");
          }
        }
      }
      const json* additional = schema.contains("additionalProperties") ? &schema.at("additionalProperties") : nullptr;
      for (auto& [key, member] : value.items()) {
        const std::string child = pointer + "/" + pointer_token(key);
        if (properties != nullptr && properties->contains(key)) {
          prepare(properties->at(key), member, child, depth + 1);
        } else if (additional != nullptr && additional->is_object()) {
          prepare(*additional, member, child, depth + 1);
        }
      }
    }
    if (value.is_array() && schema.contains("items") && schema.at("items").is_object()) {
      for (std::size_t i = 0; i < value.size(); ++i) prepare(schema.at("items"), value[i], pointer + "/" + std::to_string(i), depth + 1);
    }
    // Of alternatives, the first whose type takes the value (converted as it would be) shapes it.
    for (const char* keyword : {"anyOf", "oneOf"}) {
      if (!schema.contains(keyword) || !schema.at(keyword).is_array()) continue;
      for (const auto& alternative : schema.at(keyword)) {
        json candidate = value;
        ValidationResult trial;
        Preparer inner(root_, origins_, trial);
        inner.prepare(alternative, candidate, pointer, depth + 1);
        const auto alternative_types = schema_types(resolved(root_, alternative));
        const bool takes = alternative_types.empty() ||
                           std::any_of(alternative_types.begin(), alternative_types.end(),
                                       [&](const std::string& type) { return matches_type(candidate, type); });
        if (!takes || !valid(alternative, candidate)) continue;
        value = std::move(candidate);
        result_.secrets.insert(result_.secrets.end(), trial.secrets.begin(), trial.secrets.end());
        break;
      }
    }
  }

  [[nodiscard]] const std::vector<Diagnostic>& utf8_problems() const noexcept { return utf8_problems_; }

  static std::string origin(const ValueOrigins& origins, const std::string& pointer) {
    const auto it = origins.described.find(pointer);
    return it == origins.described.end() ? std::string() : " (" + it->second + ")";
  }

 private:
  /// Whether `value` passes the alternative `schema` alone, by valijson. An alternative that
  /// refers elsewhere in the document cannot be compiled alone: its type decides, and
  /// valijson judges the whole value afterwards anyway.
  bool valid(const json& schema, const json& value) const {
    const json& alternative = resolved(root_, schema);
    if (alternative.dump().find("\"$ref\"") != std::string::npos) return true;
    try {
      valijson::Validator validator(valijson::Validator::kStrongTypes);
      const valijson::adapters::NlohmannJsonAdapter target(value);
      return validator.validate(*compiled(alternative), target, nullptr);
    } catch (const std::exception&) {
      return false;
    }
  }

  const json& root_;
  const ValueOrigins& origins_;
  ValidationResult& result_;
  std::vector<Diagnostic> utf8_problems_;
};

/// Puts valijson's verdicts into words: for a value valijson refused, what is wrong with it in
/// terms of the keyword that refused it ("expected integer, got string "many"", "must be at
/// least 1", "unknown key "sise"; did you mean "size"?"). Judges nothing valijson did not.
class Explainer {
 public:
  Explainer(const json& root, const json& document, const ValueOrigins& origins, const std::string& base)
      : root_(root), document_(document), origins_(origins), base_(base) {}

  /// The schema that governs the value at `path` (tokens below the validated value), and the
  /// path of the value whose alternatives (anyOf/oneOf) were met on the way, if any: errors
  /// inside alternatives are explained at that value.
  struct Located {
    const json* schema = nullptr;
    std::size_t depth = 0;  // tokens of `path` the schema stands for
  };
  Located locate(const std::vector<std::string>& path) const {
    Located located{&resolved(root_, root_), 0};
    for (const auto& token : path) {
      const json& schema = *located.schema;
      if (!schema.is_object() || schema.contains("anyOf") || schema.contains("oneOf")) break;
      const json* next = nullptr;
      if (schema.contains("properties") && schema.at("properties").contains(token)) {
        next = &schema.at("properties").at(token);
      } else if (schema.contains("additionalProperties") && schema.at("additionalProperties").is_object()) {
        next = &schema.at("additionalProperties");
      } else if (schema.contains("items") && schema.at("items").is_object()) {
        next = &schema.at("items");
      }
      if (next == nullptr) break;
      located.schema = &resolved(root_, *next);
      ++located.depth;
    }
    return located;
  }

  /// What is wrong with the value at `path` by `schema`; empty when the simple keywords find
  /// nothing (then valijson's own words are used).
  std::vector<Diagnostic> explain(const json& schema, const std::vector<std::string>& path) const {
    std::vector<Diagnostic> out;
    const std::string pointer = pointer_of(path);
    const json* value = value_at(path);
    if (value == nullptr || !schema.is_object()) return out;
    auto fail = [&](const std::string& where, std::string message) {
      out.push_back(Diagnostic{where.empty() ? "/" : where, std::move(message)});
    };
    const std::string from = Preparer::origin(origins_, pointer);
    const auto types = schema_types(schema);
    if (!types.empty() && std::none_of(types.begin(), types.end(), [&](const std::string& t) { return matches_type(*value, t); })) {
      const std::string what = schema.value("secret", false) ? std::string() : " " + shown(*value);
      fail(pointer, "expected " + join(types, " or ") + ", got " + type_name(*value) + what + from);
      return out;
    }
    if (schema.contains("enum") && schema.at("enum").is_array()) {
      const json& options = schema.at("enum");
      if (std::find(options.begin(), options.end(), *value) == options.end()) {
        std::vector<std::string> allowed;
        for (const auto& option : options) allowed.push_back(shown(option));
        fail(pointer, "must be one of " + join(allowed, ", ") + ", got " + shown(*value) + from);
      }
    }
    if (schema.contains("const") && schema.at("const") != *value) {
      fail(pointer, "must be " + shown(schema.at("const")) + ", got " + shown(*value) + from);
    }
    if (value->is_number()) {
      const double number = value->get<double>();
      auto bound = [&](const char* keyword, bool broken, const char* words) {
        if (schema.contains(keyword) && schema.at(keyword).is_number() && broken) {
          fail(pointer, std::string("must be ") + words + " " + schema.at(keyword).dump() + ", got " + value->dump() + from);
        }
      };
      bound("minimum", schema.contains("minimum") && number < schema.value("minimum", 0.0), "at least");
      bound("maximum", schema.contains("maximum") && number > schema.value("maximum", 0.0), "at most");
      bound("exclusiveMinimum", schema.contains("exclusiveMinimum") && number <= schema.value("exclusiveMinimum", 0.0), "greater than");
      bound("exclusiveMaximum", schema.contains("exclusiveMaximum") && number >= schema.value("exclusiveMaximum", 0.0), "less than");
    }
    if (value->is_string()) {
      const std::string& text = value->get_ref<const std::string&>();
      const std::size_t length = code_points(text);
      if (schema.contains("minLength") && length < schema.value("minLength", std::size_t{0})) {
        fail(pointer, text.empty() ? "must not be empty" + from
                                   : "must be at least " + schema.at("minLength").dump() + " characters long" + from);
      }
      if (schema.contains("maxLength") && length > schema.value("maxLength", std::size_t{0})) {
        fail(pointer, "must be at most " + schema.at("maxLength").dump() + " characters long" + from);
      }
      if (schema.contains("pattern") && schema.at("pattern").is_string()) {
        const std::string pattern = schema.at("pattern").get<std::string>();
        try {
          if (!std::regex_search(text, std::regex(pattern, std::regex::ECMAScript))) {
            fail(pointer, (schema.value("secret", false) ? std::string("value") : shown(*value)) +
                              " does not match the pattern " + pattern + from);
          }
        } catch (const std::regex_error&) {
          fail(pointer, "the schema's pattern " + pattern + " is not a valid regular expression");
        }
      }
    }
    if (value->is_array()) {
      if (schema.contains("minItems") && value->size() < schema.value("minItems", std::size_t{0})) {
        fail(pointer, "must have at least " + schema.at("minItems").dump() + " item(s)");
      }
      if (schema.contains("maxItems") && value->size() > schema.value("maxItems", std::size_t{0})) {
        fail(pointer, "must have at most " + schema.at("maxItems").dump() + " item(s)");
      }
    }
    if (value->is_object()) {
      static const json kNone = json::object();
      const json& properties = schema.contains("properties") && schema.at("properties").is_object() ? schema.at("properties") : kNone;
      if (schema.contains("required") && schema.at("required").is_array()) {
        for (const auto& key : schema.at("required")) {
          if (key.is_string() && !value->contains(key.get<std::string>())) {
            fail(pointer + "/" + pointer_token(key.get<std::string>()), "required key \"" + key.get<std::string>() + "\" is missing");
          }
        }
      }
      if (schema.contains("additionalProperties") && schema.at("additionalProperties") == json(false)) {
        std::vector<std::string> allowed;
        for (const auto& [key, unused] : properties.items()) allowed.push_back(key);
        for (const auto& [key, unused] : value->items()) {
          if (properties.contains(key)) continue;
          std::string message = "unknown key \"" + key + "\"";
          if (const auto typo = closest_word(key, allowed)) message += " (did you mean \"" + *typo + "\"?)";
          message += "; allowed keys: " + join(allowed, ", ");
          fail(pointer + "/" + pointer_token(key), message);
        }
      }
    }
    for (const char* keyword : {"anyOf", "oneOf"}) {
      if (!schema.contains(keyword) || !schema.at(keyword).is_array()) continue;
      std::vector<std::string> reasons;
      std::size_t matching = 0;
      for (const auto& alternative : schema.at(keyword)) {
        const auto problems = explain(resolved(root_, alternative), path);
        if (problems.empty()) {
          ++matching;
        } else if (reasons.size() < 3) {
          reasons.push_back(problems.front().message);
        }
      }
      if (std::string(keyword) == "oneOf" && matching > 1) {
        fail(pointer, "matches more than one of the allowed forms");
      } else if (matching == 0) {
        fail(pointer, "matches none of the allowed forms (" + join(reasons, "; ") + ")");
      }
    }
    return out;
  }

  [[nodiscard]] std::string pointer_of(const std::vector<std::string>& path, std::size_t depth = std::string::npos) const {
    std::string pointer = base_;
    for (std::size_t i = 0; i < path.size() && i < depth; ++i) pointer += "/" + pointer_token(path[i]);
    return pointer;
  }

 private:
  static std::size_t code_points(const std::string& text) {
    std::size_t count = 0;
    for (const char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
    return count;
  }

  const json* value_at(const std::vector<std::string>& path) const {
    const json* node = &document_;
    for (const auto& token : path) {
      if (node->is_object()) {
        const auto it = node->find(token);
        if (it == node->end()) return nullptr;
        node = &*it;
      } else if (node->is_array()) {
        std::size_t index = 0;
        const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), index);
        if (error != std::errc() || end != token.data() + token.size() || index >= node->size()) return nullptr;
        node = &(*node)[index];
      } else {
        return nullptr;
      }
    }
    return node;
  }

  const json& root_;
  const json& document_;
  const ValueOrigins& origins_;
  std::string base_;
};

/// valijson's context ("<root>", "[config]", "[size]") as path tokens below the value.
std::vector<std::string> path_of(const std::vector<std::string>& context) {
  std::vector<std::string> path;
  for (const auto& part : context) {
    if (part.size() >= 2 && part.front() == '[' && part.back() == ']') path.push_back(part.substr(1, part.size() - 2));
  }
  return path;
}

/// Orders diagnostics as the values appear in the document (keys sorted, items by index).
bool document_order(const Diagnostic& a, const Diagnostic& b) {
  auto tokens = [](const std::string& pointer) {
    std::vector<std::string> parts;
    std::size_t at = 0;
    while (at < pointer.size()) {
      const auto next = pointer.find('/', at + 1);
      parts.push_back(pointer.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1));
      at = next == std::string::npos ? pointer.size() : next;
    }
    return parts;
  };
  const auto left = tokens(a.pointer);
  const auto right = tokens(b.pointer);
  for (std::size_t i = 0; i < left.size() && i < right.size(); ++i) {
    if (left[i] == right[i]) continue;
    const bool numeric = !left[i].empty() && !right[i].empty() &&
                         left[i].find_first_not_of("0123456789") == std::string::npos &&
                         right[i].find_first_not_of("0123456789") == std::string::npos;
    if (numeric && left[i].size() != right[i].size()) return left[i].size() < right[i].size();
    return left[i] < right[i];
  }
  return left.size() < right.size();
}

std::vector<std::string> schema_problems(const json& schema, const std::string& where) {
  std::vector<std::string> problems;
  if (schema.is_boolean()) return problems;
  if (!schema.is_object()) return {where + ": a schema must be an object or a boolean"};
  static const std::set<std::string> known_types = {"string", "integer", "number", "boolean", "object", "array", "null"};
  for (const auto& type : schema_types(schema)) {
    if (known_types.count(type) == 0) problems.push_back(where + ": unknown type \"" + type + "\"");
  }
  auto children = [&](const char* keyword, bool keyed) {
    if (!schema.contains(keyword)) return;
    const json& node = schema.at(keyword);
    if (keyed && node.is_object()) {
      for (const auto& [key, child] : node.items()) {
        for (auto& p : schema_problems(child, where + "/" + keyword + "/" + pointer_token(key))) problems.push_back(p);
      }
    } else if (!keyed && node.is_array()) {
      for (std::size_t i = 0; i < node.size(); ++i) {
        for (auto& p : schema_problems(node[i], where + "/" + keyword + "/" + std::to_string(i))) problems.push_back(p);
      }
    } else if (!keyed && node.is_object()) {
      for (auto& p : schema_problems(node, where + "/" + keyword)) problems.push_back(p);
    }
  };
  children("properties", true);
  children("$defs", true);
  children("definitions", true);
  children("items", false);
  children("additionalProperties", false);
  children("anyOf", false);
  children("oneOf", false);
  return problems;
}

}  // namespace

namespace {

/// The number of single-character edits between two words (for "did you mean").
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

/// The allowed key closest to `key`, if it is close enough to be a typo of it.
std::optional<std::string> closest_word(const std::string& key, const std::vector<std::string>& allowed) {
  std::optional<std::string> best;
  std::size_t best_distance = std::max<std::size_t>(1, std::min<std::size_t>(3, key.size() / 3)) + 1;
  for (const auto& candidate : allowed) {
    const std::size_t distance = edit_distance(key, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}


void validate_against_schema(const json& schema, json& value, const std::string& pointer,
                             const ValueOrigins& origins, ValidationResult& result) {
  Preparer preparer(schema, origins, result);
  preparer.prepare(schema, value, pointer);

  std::vector<Diagnostic> found;
  valijson::ValidationResults results;
  bool valid = false;
  try {
    valijson::Validator validator(valijson::Validator::kStrongTypes);
    const valijson::adapters::NlohmannJsonAdapter target(value);
    valid = validator.validate(*compiled(schema), target, &results);
  } catch (const std::exception& e) {
    found.push_back(Diagnostic{pointer.empty() ? "/" : pointer, std::string("cannot be checked: the schema is unusable: ") + e.what()});
  }
  if (!valid) {
    // valijson reports each refusal at the value it refused, and again at every parent on the
    // way ("Failed to validate against schema associated with property name ..."): each
    // value is explained once, at the deepest place, or where its alternatives begin.
    const Explainer explainer(schema, value, origins, pointer);
    std::map<std::string, std::pair<std::vector<std::string>, std::vector<std::string>>> refused;  // pointer -> path, descriptions
    valijson::ValidationResults::Error error;
    while (results.popError(error)) {
      const std::string& text = error.description;
      if (text.starts_with("Failed to validate against schema associated with property") ||
          text.starts_with("Failed to validate against child schema") || text.starts_with("Failed to validate item #") ||
          text.starts_with("Failed to validate against additional")) {
        continue;
      }
      auto path = path_of(error.context);
      path.resize(explainer.locate(path).depth);
      auto& entry = refused[explainer.pointer_of(path)];
      entry.first = path;
      entry.second.push_back(text);
    }
    for (const auto& [where, entry] : refused) {
      const auto& [path, descriptions] = entry;
      auto explained = explainer.explain(*explainer.locate(path).schema, path);
      if (explained.empty()) {
        for (const auto& description : descriptions) {
          explained.push_back(Diagnostic{where.empty() ? "/" : where, description});
        }
      }
      for (auto& diagnostic : explained) {
        const bool known = std::any_of(found.begin(), found.end(), [&](const Diagnostic& d) {
          return d.pointer == diagnostic.pointer && d.message == diagnostic.message;
        });
        if (!known) found.push_back(std::move(diagnostic));
      }
    }
  }
  found.insert(found.end(), preparer.utf8_problems().begin(), preparer.utf8_problems().end());
  std::stable_sort(found.begin(), found.end(), document_order);
  result.diagnostics.insert(result.diagnostics.end(), found.begin(), found.end());
}

/// Defaults are filled in before validation, so one its own schema refuses would make every
/// config without that key invalid: refuse such a schema instead.
void check_defaults(const json& schema, const std::string& where, std::vector<std::string>& problems) {
  if (!schema.is_object() || !schema.contains("properties") || !schema.at("properties").is_object()) return;
  for (const auto& [key, property] : schema.at("properties").items()) {
    const std::string at = where + "/properties/" + pointer_token(key);
    if (property.is_object() && property.contains("default") && property.dump().find("\"$ref\"") == std::string::npos) {
      try {
        valijson::Validator validator(valijson::Validator::kStrongTypes);
        const valijson::adapters::NlohmannJsonAdapter target(property.at("default"));
        if (!validator.validate(*compiled(property), target, nullptr)) {
          problems.push_back(at + ": the default " + shown(property.at("default")) + " does not pass its own schema");
        }
      } catch (const std::exception& e) {
        problems.push_back(at + ": not a usable JSON Schema: " + e.what());
      }
    }
    check_defaults(property, at, problems);
  }
}

std::vector<std::string> check_schema(const json& schema) {
  std::vector<std::string> problems = schema_problems(schema, "#");
  if (problems.empty()) {
    try {
      compiled(schema);
    } catch (const std::exception& e) {
      problems.push_back(std::string("#: not a usable JSON Schema: ") + e.what());
    }
  }
  if (problems.empty()) check_defaults(schema, "#", problems);
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
