#include "schema_markdown.hpp"

#include <set>

namespace etl::host {

namespace {

std::string markdown_cell(std::string text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string number_text(const nlohmann::json& value) {
  if (value.is_number_float() && value.get<double>() == static_cast<double>(static_cast<long long>(value.get<double>()))) {
    return std::to_string(static_cast<long long>(value.get<double>()));
  }
  return value.dump();
}

/// One row of the table: the key, its type with bounds, its default, its description.
std::string config_table_row(const std::string& key, const nlohmann::json& property, bool is_required) {
  std::string type = property.value("type", std::string(property.contains("anyOf") ? "see description" : "any"));
  if (const auto items = property.find("items"); type == "array" && items != property.end() && items->contains("type")) {
    type = "array of " + items->at("type").get<std::string>();
  }
  if (const auto values = property.find("additionalProperties"); type == "object" && values != property.end() &&
                                                                 values->is_object() && values->contains("type")) {
    type = "object of " + values->at("type").get<std::string>();
  }
  std::vector<std::string> notes;
  if (is_required) notes.push_back("required");
  if (property.value("secret", false)) notes.push_back("secret");
  if (const auto values = property.find("enum"); values != property.end()) {
    std::string listed;
    for (const auto& value : *values) listed += (listed.empty() ? "" : ", ") + std::string("`") + value.get<std::string>() + "`";
    notes.push_back("one of " + listed);
  }
  if (property.contains("minimum")) notes.push_back("≥ " + number_text(property.at("minimum")));
  if (property.contains("exclusiveMinimum")) notes.push_back("> " + number_text(property.at("exclusiveMinimum")));
  if (property.contains("maximum")) notes.push_back("≤ " + number_text(property.at("maximum")));
  if (property.contains("minLength")) notes.push_back("min length " + number_text(property.at("minLength")));
  for (const auto& note : notes) type += ", " + note;
  std::string fallback;
  if (const auto value = property.find("default"); value != property.end()) {
    fallback = "`" + (value->is_number() ? number_text(*value) : value->dump()) + "`";
  }
  return "| `" + key + "` | " + markdown_cell(type) + " | " + markdown_cell(fallback) + " | " +
         markdown_cell(property.value("description", std::string())) + " |\n";
}

std::set<std::string> required_keys(const nlohmann::json& schema) {
  std::set<std::string> required;
  if (const auto list = schema.find("required"); list != schema.end()) {
    for (const auto& name : *list) required.insert(name.get<std::string>());
  }
  return required;
}

}  // namespace

std::string config_table_markdown(const nlohmann::json& schema) {
  std::string out = "| Key | Type | Default | Description |\n|---|---|---|---|\n";
  const auto properties = schema.find("properties");
  if (properties == schema.end() || properties->empty()) return out + "| (none) | | | This plugin takes no config. |\n";
  const std::set<std::string> required = required_keys(schema);
  for (const auto& [key, property] : properties->items()) {
    out += config_table_row(key, property, required.count(key) != 0);
    // A block of keys of its own (retry): one row per key, named block.key.
    if (const auto nested = property.find("properties"); nested != property.end() && nested->is_object()) {
      const std::set<std::string> nested_required = required_keys(property);
      for (const auto& [inner, inner_property] : nested->items()) {
        out += config_table_row(key + "." + inner, inner_property, nested_required.count(inner) != 0);
      }
    }
  }
  return out;
}

}  // namespace etl::host
