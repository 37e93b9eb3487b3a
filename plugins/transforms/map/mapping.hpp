#pragma once
// The map transform's operations, apart from the plugin, applied in a fixed order:
// extract, copy, rename, set, template, cast, drop, keep.

#include <charconv>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace etl::plugins::map_transform {

/// "Hello, {name}!" with fields by name; `{{` and `}}` are literal braces. A missing or null
/// field is an error naming it (the caller refuses the record).
class Template {
 public:
  static Template parse(const std::string& text) {
    Template parsed;
    std::string literal;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
        literal += c;
        ++i;
      } else if (c == '{') {
        const auto close = text.find('}', i);
        if (close == std::string::npos) throw std::invalid_argument("unclosed { at character " + std::to_string(i + 1));
        const std::string name = text.substr(i + 1, close - i - 1);
        if (name.empty()) throw std::invalid_argument("empty {} at character " + std::to_string(i + 1));
        parsed.parts_.push_back({std::move(literal), false});
        literal.clear();
        parsed.parts_.push_back({name, true});
        i = close;
      } else if (c == '}') {
        throw std::invalid_argument("unmatched } at character " + std::to_string(i + 1) + " (write }} for a brace)");
      } else {
        literal += c;
      }
    }
    parsed.parts_.push_back({std::move(literal), false});
    return parsed;
  }

  /// The text, or the name of the first field that is missing or null.
  [[nodiscard]] std::optional<std::string> render(const sdk::Record& record, std::string& missing) const {
    std::string out;
    for (const auto& part : parts_) {
      if (!part.field) {
        out += part.text;
        continue;
      }
      const auto text = record.text(part.text);
      if (!text) {
        missing = part.text;
        return std::nullopt;
      }
      out += *text;
    }
    return out;
  }

 private:
  struct Part {
    std::string text;  // literal text, or the field name
    bool field;
  };
  std::vector<Part> parts_;
};

/// Converts a value to `type` ("string", "integer", "real", "boolean", "json", "bytes");
/// nullopt when its text form does not parse as that type. Null stays null.
inline std::optional<sdk::Value> cast(const sdk::Value& value, const std::string& type) {
  if (value.is_null()) return value;
  const std::string text = *value.text();
  if (type == "string") return sdk::Value(text);
  if (type == "integer") {
    if (value.type() == sdk::ValueType::integer) return value;
    if (value.type() == sdk::ValueType::real) {
      const double real = value.as_real();
      if (real != static_cast<double>(static_cast<std::int64_t>(real))) return std::nullopt;
      return sdk::Value(static_cast<std::int64_t>(real));
    }
    std::int64_t number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return sdk::Value(number);
  }
  if (type == "real") {
    if (value.type() == sdk::ValueType::integer) return sdk::Value(static_cast<double>(value.as_int()));
    double number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return sdk::Value(number);
  }
  if (type == "boolean") {
    if (text == "true" || text == "1") return sdk::Value(true);
    if (text == "false" || text == "0") return sdk::Value(false);
    return std::nullopt;
  }
  if (type == "json") {
    if (value.type() == sdk::ValueType::json) return value;
    auto parsed = nlohmann::json::parse(text, nullptr, false);
    if (parsed.is_discarded()) return std::nullopt;
    return sdk::from_json_value(parsed);
  }
  if (type == "bytes") return sdk::Value::bytes(value.type() == sdk::ValueType::bytes ? value.stored_text() : text);
  return std::nullopt;
}

/// A value taken from a JSON field by JSON pointer: {"from": "payload", "pointer": "/metadata/userId"}.
struct Extraction {
  std::string target;
  std::string from;
  nlohmann::json::json_pointer pointer;
};

/// Every operation of one map, parsed from config.
class Mapping {
 public:
  /// Throws std::invalid_argument whose message starts with the pointer of the bad part.
  static Mapping parse(const nlohmann::json& config) {
    Mapping m;
    const nlohmann::json none = nlohmann::json::object();
    // A named reference, not a temporary: items() refers to the object it iterates.
    auto section = [&](const char* name) -> const nlohmann::json& {
      const auto found = config.find(name);
      return found != config.end() && found->is_object() ? *found : none;
    };
    for (const auto& [target, spec] : section("extract").items()) {
      try {
        m.extract_.push_back({target, spec.at("from").get<std::string>(),
                              nlohmann::json::json_pointer(spec.at("pointer").get<std::string>())});
      } catch (const nlohmann::json::exception& e) {
        throw std::invalid_argument("/extract/" + target + "/pointer: not a JSON pointer (e.g. /metadata/userId)");
      }
    }
    for (const auto& [target, source] : section("copy").items()) {
      m.copy_.emplace_back(target, source.get<std::string>());
    }
    for (const auto& [from, to] : section("rename").items()) {
      m.rename_.emplace_back(from, to.get<std::string>());
    }
    for (const auto& [target, value] : section("set").items()) {
      m.set_.emplace_back(target, sdk::from_json_value(value));
    }
    for (const auto& [target, text] : section("template").items()) {
      try {
        m.template_.emplace_back(target, Template::parse(text.get<std::string>()));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("/template/" + target + ": " + e.what());
      }
    }
    for (const auto& [target, type] : section("cast").items()) {
      m.cast_.emplace_back(target, type.get<std::string>());
    }
    m.drop_ = config.value("drop", std::vector<std::string>{});
    m.keep_ = config.value("keep", std::vector<std::string>{});
    return m;
  }

  /// Applies every operation to `record`; on failure returns {code, message} and the record is
  /// to be refused.
  [[nodiscard]] std::optional<std::pair<std::string, std::string>> apply(sdk::Record& record) const {
    // Each JSON field is parsed once, however many values are taken from it.
    std::map<std::string, nlohmann::json> documents;
    for (const auto& extraction : extract_) {
      const sdk::Value* source = record.get(extraction.from);
      if (source == nullptr || source->type() != sdk::ValueType::json) {
        if (source == nullptr || source->is_null()) {
          record.set(extraction.target, sdk::Value());
          documents.erase(extraction.target);
          continue;
        }
        return std::pair{std::string("map.extract"), "field \"" + extraction.from + "\" is not JSON (object or array)"};
      }
      auto parsed = documents.find(extraction.from);
      if (parsed == documents.end()) {
        parsed = documents.emplace(extraction.from, nlohmann::json::parse(source->stored_text(), nullptr, false)).first;
      }
      const nlohmann::json& document = parsed->second;
      sdk::Value value;  // absent in the document: null
      if (!document.is_discarded() && document.contains(extraction.pointer)) {
        value = sdk::from_json_value(document.at(extraction.pointer));
      }
      record.set(extraction.target, std::move(value));
      documents.erase(extraction.target);  // a field written here is parsed again if read later
    }
    for (const auto& [target, source] : copy_) {
      const sdk::Value* value = record.get(source);
      record.set(target, value != nullptr ? *value : sdk::Value());
    }
    for (const auto& [from, to] : rename_) {
      if (sdk::Field* field = record.find(from)) {
        sdk::Value value = std::move(field->value);
        record.erase(from);
        record.set(to, std::move(value));
      }
    }
    for (const auto& [target, value] : set_) record.set(target, value);
    for (const auto& [target, text] : template_) {
      std::string missing;
      auto rendered = text.render(record, missing);
      if (!rendered) {
        return std::pair{std::string("map.template"),
                         "template of field \"" + target + "\" needs field \"" + missing + "\", which is missing or null"};
      }
      record.set(target, sdk::Value(std::move(*rendered)));
    }
    for (const auto& [target, type] : cast_) {
      sdk::Field* field = record.find(target);
      if (field == nullptr) continue;
      auto converted = cast(field->value, type);
      if (!converted) {
        return std::pair{std::string("map.cast"), "field \"" + target + "\" is not " + type + ": \"" +
                                                      field->value.text().value_or("") + "\""};
      }
      field->value = std::move(*converted);
    }
    for (const auto& name : drop_) record.erase(name);
    if (!keep_.empty()) {
      std::vector<sdk::Field> kept;
      for (const auto& name : keep_) {
        if (sdk::Field* field = record.find(name)) kept.push_back(std::move(*field));
      }
      record.fields() = std::move(kept);
    }
    return std::nullopt;
  }

 private:
  std::vector<Extraction> extract_;
  std::vector<std::pair<std::string, std::string>> copy_;
  std::vector<std::pair<std::string, std::string>> rename_;
  std::vector<std::pair<std::string, sdk::Value>> set_;
  std::vector<std::pair<std::string, Template>> template_;
  std::vector<std::pair<std::string, std::string>> cast_;
  std::vector<std::string> drop_;
  std::vector<std::string> keep_;
};

}  // namespace etl::plugins::map_transform
