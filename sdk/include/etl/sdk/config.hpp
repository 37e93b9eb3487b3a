// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Helpers for plugin factories: reading the config and declaring the factory functions.

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "etl/sdk/plugin.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// Parses the config the host passed. The host has already validated it against the
/// plugin's schema and filled in defaults, so plugins may use `config.at(key)` for any key
/// that has a default or is required.
inline nlohmann::json parse_config(const PluginArgs& args) {
  return nlohmann::json::parse(args.config_json.begin(), args.config_json.end());
}

/// The run summary as JSON, as the json reporter and `etl-host run --summary-json` write it.
inline nlohmann::json summary_to_json(const Summary& s) {
  return nlohmann::json{{"requested", s.requested ? nlohmann::json(*s.requested) : nlohmann::json(nullptr)},
                        {"received", s.received},
                        {"ok", s.ok},
                        {"rejected", s.rejected},
                        {"failed", s.failed},
                        {"commit_unknown", s.commit_unknown},
                        {"seconds", s.seconds},
                        {"rows_per_second", s.rows_per_second},
                        {"completed", s.completed},
                        {"stop_reason", s.stop_reason},
                        {"exit_code", s.exit_code}};
}

/// Factory adaptors: `&make_source<MySource>` constructs MySource(const PluginArgs&).
template <class T>
std::unique_ptr<Source> make_source(const PluginArgs& args) {
  return std::make_unique<T>(args);
}
template <class T>
std::unique_ptr<Sink> make_sink(const PluginArgs& args) {
  return std::make_unique<T>(args);
}
template <class T>
std::unique_ptr<Reporter> make_reporter(const PluginArgs& args) {
  return std::make_unique<T>(args);
}

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
