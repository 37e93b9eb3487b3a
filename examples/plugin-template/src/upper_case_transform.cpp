// upper-case: a transform that upper-cases the ASCII letters of some fields, and refuses a
// record in which one of them is missing (rejected at stage transform, with its own code).

#include <cctype>

#include <etl/sdk.hpp>

namespace {

struct Config {
  std::vector<std::string> fields;
};

class UpperCaseTransform final : public etl::sdk::Transform {
 public:
  static etl::sdk::ConfigMap<Config> config_map() {
    etl::sdk::ConfigMap<Config> map;
    map.key("fields", &Config::fields, "Fields to upper-case.").required().schema(R"({"minItems": 1})");
    return map;
  }

  UpperCaseTransform(Config config, etl::sdk::Context&) : config_(std::move(config)) {}

  etl::sdk::TransformResult apply(etl::sdk::Record& record, etl::sdk::Batch&) override {
    for (const auto& name : config_.fields) {
      etl::sdk::Field* field = record.find(name);
      if (field == nullptr || field->value.is_null()) {
        return etl::sdk::TransformResult::refuse("upper_case.missing", "the record has no field \"" + name + "\"");
      }
      std::string text = field->value.text().value_or("");
      for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      field->value = etl::sdk::Value(std::move(text));
    }
    return etl::sdk::TransformResult::keep();
  }

 private:
  Config config_;
};

}  // namespace

ETL_PLUGIN(UpperCaseTransform, "upper-case", "1.0.0", "Upper-cases fields (example out-of-tree transform)");
