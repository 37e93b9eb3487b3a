// map: reshapes records — extract from JSON, copy, rename, set constants, templates, casts,
// drop, keep only — in that order. A cast or template that cannot apply refuses the record.

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "mapping.hpp"

namespace etl::plugins::map_transform {
namespace {

struct Config {
  nlohmann::json extract, copy, rename, set, templates, cast;
  std::vector<std::string> drop, keep;
};

std::string object_of(nlohmann::json values) {
  return nlohmann::json{{"type", "object"}, {"additionalProperties", std::move(values)}, {"default", nlohmann::json::object()}}.dump();
}

class MapTransform final : public sdk::Transform {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("extract", &Config::extract,
            "New field -> {\"from\": JSON field, \"pointer\": \"/metadata/userId\"}; null when the document lacks it.")
        .schema(object_of({{"type", "object"},
                           {"additionalProperties", false},
                           {"required", {"from", "pointer"}},
                           {"properties", {{"from", {{"type", "string"}}}, {"pointer", {{"type", "string"}}}}}}));
    map.key("copy", &Config::copy, "New field -> the field to copy.").schema(object_of({{"type", "string"}}));
    map.key("rename", &Config::rename, "Old name -> new name.").schema(object_of({{"type", "string"}, {"minLength", 1}}));
    map.key("set", &Config::set, "Field -> constant (any JSON value, typed by its JSON type).").schema(object_of(nlohmann::json::object()));
    map.key("template", &Config::templates, "Field -> text with {field} placeholders, e.g. \"Hello, {name}!\".")
        .schema(object_of({{"type", "string"}}));
    map.key("cast", &Config::cast, "Field -> type its text form is converted to.")
        .schema(object_of({{"type", "string"}, {"enum", {"string", "integer", "real", "boolean", "json", "bytes"}}}));
    map.key("drop", &Config::drop, "Fields to remove.");
    map.key("keep", &Config::keep, "Keep only these fields, in this order (after everything else).");
    return map;
  }

  MapTransform(const Config& config, sdk::Context&) {
    nlohmann::json all{{"extract", config.extract}, {"copy", config.copy}, {"rename", config.rename}, {"set", config.set},
                       {"template", config.templates}, {"cast", config.cast}, {"drop", config.drop}, {"keep", config.keep}};
    for (auto it = all.begin(); it != all.end();) it = it->is_null() ? all.erase(it) : std::next(it);
    try {
      mapping_ = Mapping::parse(all);
    } catch (const std::invalid_argument& e) {
      const std::string message = e.what();
      const auto colon = message.find(": ");
      throw sdk::ConfigError(message.substr(0, colon), message.substr(colon + 2));
    }
  }

  sdk::TransformResult apply(sdk::Record& record, sdk::Batch&) override {
    if (auto failure = mapping_.apply(record)) return sdk::TransformResult::refuse(failure->first, failure->second);
    return sdk::TransformResult::keep();
  }

 private:
  Mapping mapping_;
};

}  // namespace
}  // namespace etl::plugins::map_transform

ETL_PLUGIN(etl::plugins::map_transform::MapTransform, "map", "1.0.0",
           "Reshapes records: extract from JSON, copy, rename, set constants, templates, casts, drop, keep");
