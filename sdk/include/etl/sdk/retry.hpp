// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Bounded retries with capped exponential backoff and jitter, shared by plugins so that
/// every `retry` config block means the same thing.
///
/// Header-only and plugin-local: nothing here crosses the plugin boundary, so it is not part
/// of the ABI (see sdk/abi-check).

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "etl/sdk/config.hpp"
#include "etl/sdk/plugin.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// The `retry` config block: {"attempts": 5, "initial_delay": 0.5, "max_delay": 30}.
struct RetryPolicy {
  /// Tries in all, the first included; 1 means no retry.
  int attempts = 5;
  /// Seconds before the first retry; doubled for each further one.
  double initial_delay = 0.5;
  /// Cap on one wait, in seconds.
  double max_delay = 30;

  /// Reads the block; keys missing from it keep their defaults.
  static RetryPolicy from_json(const nlohmann::json& block) {
    RetryPolicy policy;
    policy.attempts = block.value("attempts", policy.attempts);
    policy.initial_delay = block.value("initial_delay", policy.initial_delay);
    policy.max_delay = block.value("max_delay", policy.max_delay);
    return policy;
  }

  /// JSON Schema of a `retry` block for a plugin's config schema, with RetryPolicy's defaults;
  /// `description` says what the plugin retries.
  static std::string schema(std::string_view description) {
    const RetryPolicy defaults;
    const nlohmann::json block{
        {"type", "object"},
        {"additionalProperties", false},
        {"default", nlohmann::json::object()},
        {"description", description},
        {"properties",
         {{"attempts", {{"type", "integer"}, {"minimum", 1}, {"default", defaults.attempts},
                        {"description", "Tries in all, the first included."}}},
          {"initial_delay", {{"type", "number"}, {"minimum", 0}, {"default", defaults.initial_delay},
                             {"description", "Seconds before the first retry; doubled each time, with jitter."}}},
          {"max_delay", {{"type", "number"}, {"minimum", 0}, {"default", defaults.max_delay},
                         {"description", "Cap on one wait, in seconds."}}}}}};
    return block.dump();
  }

  /// Declares a `retry` block in a plugin's ConfigMap, stored in `member`.
  template <class Config>
  static void declare(ConfigMap<Config>& map, RetryPolicy Config::*member, std::string description) {
    nlohmann::json block = nlohmann::json::parse(schema(""));
    block.erase("description");
    map.parse_with("retry", std::move(block), std::move(description),
                   [member](Config& config, const nlohmann::json& value) { config.*member = from_json(value); });
  }

  /// The wait before retry number `retry` (1 for the first retry). Jitter draws from
  /// [half, full] of the exponential delay, so clients that failed together spread out
  /// instead of hammering a recovering server in step.
  template <class Random>
  double delay(int retry, Random& random) const {
    const double exponential = initial_delay * std::pow(2.0, std::max(0, retry - 1));
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return std::min(exponential * jitter(random), max_delay);
  }
};

/// Sleeps `seconds`, waking early when the host asks the run to stop. False when it did.
inline bool sleep_unless_stopped(const Context& context, double seconds) {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < until) {
    if (context.stop_requested()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(50), until - Clock::now()));
  }
  return !context.stop_requested();
}

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
