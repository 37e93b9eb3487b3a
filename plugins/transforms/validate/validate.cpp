// validate: per-field rules; a record that breaks any is refused (rejected at stage transform),
// or with on_failure: drop filtered out (dropped), with every broken rule named.

#include "etl/sdk.hpp"
#include "rules.hpp"

namespace etl::plugins::validate {
namespace {

struct Config {
  std::vector<FieldRules> rules;
  std::string today = "UTC";
  std::string on_failure = "reject";
};

class ValidateTransform final : public sdk::Transform {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.parse_with("rules",
                   nlohmann::json{{"type", "object"}, {"minProperties", 1}, {"additionalProperties", field_rules_schema()}}.dump(),
                   "Field name -> its rules, e.g. {\"name\": {\"required\": true, \"regex\": \"^[A-Za-z]+$\"}}.",
                   [](Config& config, const sdk::ConfigValue& value) {
                     const nlohmann::json rules = sdk::to_json(value);
                     for (const auto& [field, object] : rules.items()) {
                       try {
                         config.rules.push_back(FieldRules::parse(field, object));
                       } catch (const std::invalid_argument& e) {
                         throw sdk::ConfigError("/rules/" + field, e.what());
                       }
                     }
                   })
        .required();
    map.key("today", &Config::today,
            "The clock \"today\" (before/after) is read from: UTC, whatever TZ the host runs in (a database's "
            "now() AT TIME ZONE 'UTC' agrees with it), or local (TZ).")
        .one_of({"UTC", "local"});
    map.key("on_failure", &Config::on_failure,
            "A record that breaks a rule: reject it (rejected at stage transform, in the reject reports), or drop "
            "it (a filter: reported dropped with the broken rules, not stored).")
        .one_of({"reject", "drop"});
    return map;
  }

  ValidateTransform(Config config, sdk::Context&)
      : rules_(std::move(config.rules)), today_(config.today == "UTC"), drop_(config.on_failure == "drop") {}

  sdk::TransformResult apply(sdk::Record& record, sdk::Batch&) override {
    failures_.clear();
    const Day today = today_.get();
    for (const auto& rules : rules_) rules.check(record, today, failures_);
    if (failures_.empty()) return sdk::TransformResult::keep();
    std::string message = failures_.front().message;
    for (std::size_t i = 1; i < failures_.size(); ++i) message += "; " + failures_[i].message;
    if (drop_) return sdk::TransformResult::drop(failures_.front().code, std::move(message));
    return sdk::TransformResult::refuse(failures_.front().code, std::move(message));
  }

 private:
  std::vector<FieldRules> rules_;
  std::vector<Failure> failures_;
  CachedToday today_;
  bool drop_ = false;
};

}  // namespace
}  // namespace etl::plugins::validate

ETL_PLUGIN(etl::plugins::validate::ValidateTransform, "validate", "1.0.0",
           "Refuses records whose fields break their rules (required, type, regex, min/max, length, enum, date)");
