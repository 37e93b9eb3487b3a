// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// The JSON form of values, records and outcomes (see the table in value.hpp), shared by the
/// json reporter, HTTP plugins and the transforms so that every plugin writes the same JSON; and
/// nlohmann::json in configs: members of that type (any JSON value, narrowed with .schema()) and
/// ConfigValue -> nlohmann::json. Optional: include it only where nlohmann/json is wanted (it
/// is the heaviest header a plugin can include). Header-only and plugin-local (not part of the ABI).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "etl/sdk/config.hpp"
#include "etl/sdk/outcome.hpp"
#include "etl/sdk/record.hpp"
#include "etl/sdk/value.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// A value's JSON form. A json value whose text does not parse (a plugin bug) becomes its text
/// as a string rather than an exception in a reporter.
inline nlohmann::json to_json_value(const Value& value) {
  switch (value.type()) {
    case ValueType::null: return nullptr;
    case ValueType::boolean: return value.as_bool();
    case ValueType::integer: return value.as_int();
    case ValueType::real:
      if (!std::isfinite(value.as_real())) return Value::real_text(value.as_real());
      return value.as_real();
    case ValueType::string: return value.stored_text();
    case ValueType::bytes: return Value::hex_text(value.stored_text());
    case ValueType::json: {
      auto parsed = nlohmann::json::parse(value.stored_text(), nullptr, false);
      if (parsed.is_discarded()) return value.stored_text();
      return parsed;
    }
  }
  return nullptr;
}

/// The value a JSON document stands for: objects and arrays become json values.
inline Value from_json_value(const nlohmann::json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded: return Value();
    case nlohmann::json::value_t::boolean: return Value(json.get<bool>());
    case nlohmann::json::value_t::number_integer: return Value(json.get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto number = json.get<std::uint64_t>();
      if (number <= static_cast<std::uint64_t>(INT64_MAX)) return Value(static_cast<std::int64_t>(number));
      return Value(static_cast<double>(number));
    }
    case nlohmann::json::value_t::number_float: return Value(json.get<double>());
    case nlohmann::json::value_t::string: return Value(json.get<std::string>());
    case nlohmann::json::value_t::binary:
      return Value::bytes(std::string(json.get_binary().begin(), json.get_binary().end()));
    case nlohmann::json::value_t::object:
    case nlohmann::json::value_t::array: return Value::json(json.dump());
  }
  return Value();
}

/// A record's fields as a JSON object, in field order.
inline nlohmann::json to_json_object(const std::vector<Field>& fields) {
  nlohmann::json object = nlohmann::json::object();
  for (const auto& field : fields) object[field.name] = to_json_value(field.value);
  return object;
}

/// The config the host passed, for a plugin without a ConfigMap (`T(const PluginArgs&)`).
inline nlohmann::json parse_config(const PluginArgs& args) {
  return nlohmann::json::parse(args.config_json.begin(), args.config_json.end());
}

/// A config value as nlohmann::json (for parsing a structured block with parse_with()).
inline nlohmann::json to_json(const ConfigValue& value) { return nlohmann::json::parse(value.json_text()); }

/// The run summary as JSON, as the json reporter and `etl-host run --summary-json` write it.
inline nlohmann::json summary_to_json(const Summary& s) {
  return nlohmann::json{{"requested", s.requested ? nlohmann::json(*s.requested) : nlohmann::json(nullptr)},
                        {"received", s.received},
                        {"ok", s.ok},
                        {"dropped", has_member(s, &Summary::dropped) ? s.dropped : 0},
                        {"rejected", s.rejected},
                        {"rejected_by_stage",
                         {{"source", s.rejected_at_source}, {"transform", s.rejected_at_transform}, {"sink", s.rejected_at_sink}}},
                        {"failed", s.failed},
                        {"commit_unknown", s.commit_unknown},
                        {"seconds", s.seconds},
                        {"rows_per_second", s.rows_per_second},
                        {"completed", s.completed},
                        {"stop_reason", s.stop_reason},
                        {"exit_code", s.exit_code}};
}

namespace config_detail {
/// nlohmann::json members of a Config: any JSON value (narrow it with .schema()); null is no default.
template <>
struct Traits<nlohmann::json> {
  static Shape shape() { return {Scalar::any, {}}; }
  static nlohmann::json read(const ConfigValue& value) { return to_json(value); }
  static std::optional<std::string> default_text(const nlohmann::json& value) {
    if (value.is_null()) return std::nullopt;
    return value.dump();
  }
};
}  // namespace config_detail

/// An outcome as JSON: {"status", "stage", "code", "message", "detail"}; empty parts left out.
inline nlohmann::json to_json_outcome(const Outcome& outcome) {
  nlohmann::json json{{"status", to_string(outcome.status)}, {"stage", to_string(outcome.stage)}};
  if (!outcome.code.empty()) json["code"] = outcome.code;
  if (!outcome.message.empty()) json["message"] = outcome.message;
  if (!outcome.detail.empty()) json["detail"] = to_json_object(outcome.detail);
  return json;
}

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
