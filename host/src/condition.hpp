#pragma once
// The `when` of a transform: which records it applies to.

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "etl/sdk/record.hpp"

namespace etl::host {

/// `{"field": "event", "equals": "created"}`, `{"field": "event", "in": ["a", "b"]}` or
/// `{"field": "email", "exists": true}`. Values compare by text form (see etl/sdk/value.hpp):
/// `"equals": 1` matches the integer 1 and the string "1"; `"equals": null` matches a null or
/// missing field.
class Condition {
 public:
  /// Throws std::invalid_argument for a condition the pipeline schema let through but that
  /// means nothing (it names what is wrong).
  static Condition from_json(const nlohmann::json& when) {
    Condition condition;
    condition.field_ = when.at("field").get<std::string>();
    if (const auto equals = when.find("equals"); equals != when.end()) {
      condition.kind_ = Kind::equals;
      condition.values_.push_back(text_of(*equals));
    } else if (const auto in = when.find("in"); in != when.end()) {
      condition.kind_ = Kind::in;
      for (const auto& item : *in) condition.values_.push_back(text_of(item));
    } else if (const auto exists = when.find("exists"); exists != when.end()) {
      condition.kind_ = Kind::exists;
      condition.exists_ = exists->get<bool>();
    } else {
      throw std::invalid_argument("give one of equals, in or exists besides field");
    }
    return condition;
  }

  [[nodiscard]] bool matches(const sdk::Record& record) const {
    const std::optional<std::string> text = record.text(field_);
    if (kind_ == Kind::exists) return text.has_value() == exists_;
    for (const auto& value : values_) {
      if (value == text) return true;
    }
    return false;
  }

  [[nodiscard]] const std::string& field() const noexcept { return field_; }

 private:
  enum class Kind { equals, in, exists };

  static std::optional<std::string> text_of(const nlohmann::json& value) {
    if (value.is_null()) return std::nullopt;
    if (value.is_string()) return value.get<std::string>();
    if (value.is_object() || value.is_array()) {
      throw std::invalid_argument("compare with a string, number, boolean or null, not " + value.dump());
    }
    return value.dump();
  }

  std::string field_;
  Kind kind_ = Kind::equals;
  std::vector<std::optional<std::string>> values_;
  bool exists_ = true;
};

}  // namespace etl::host
