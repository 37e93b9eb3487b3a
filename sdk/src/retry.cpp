// SPDX-License-Identifier: MIT
#include "etl/sdk/retry.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// splitmix64: a fast, well-mixed generator for jitter (no need for std::random_device per wait).
double next_unit(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;
}

}  // namespace

RetryPolicy RetryPolicy::from_config(const ConfigValue& block) {
  RetryPolicy policy;
  policy.attempts = block.value("attempts", policy.attempts);
  policy.initial_delay = block.value("initial_delay", policy.initial_delay);
  policy.max_delay = block.value("max_delay", policy.max_delay);
  policy.max_outage = block.value("max_outage", policy.max_outage);
  return policy;
}

std::string RetryPolicy::schema(const RetryPolicy& defaults) {
  const nlohmann::ordered_json block{
      {"type", "object"},
      {"additionalProperties", false},
      {"default", nlohmann::ordered_json::object()},
      {"properties",
       {{"attempts", {{"type", "integer"}, {"minimum", 1}, {"default", defaults.attempts},
                      {"description", "Failures in a row without progress before giving up (batch runs; a service does not count them)."}}},
        {"initial_delay", {{"type", "number"}, {"minimum", 0}, {"default", defaults.initial_delay},
                           {"description", "Seconds before the first retry; doubled each time, with jitter."}}},
        {"max_delay", {{"type", "number"}, {"minimum", 0}, {"default", defaults.max_delay},
                       {"description", "Cap on one wait, in seconds."}}},
        {"max_outage", {{"type", "number"}, {"minimum", 0}, {"default", defaults.max_outage},
                        {"description", "Seconds failures in a row may last before giving up; 0: no time bound."}}}}}};
  return block.dump();
}

double RetryPolicy::delay(int retry, double unit) const {
  const double exponential = initial_delay * std::pow(2.0, std::min(60, std::max(0, retry - 1)));
  const double jittered = exponential * (0.5 + 0.5 * std::clamp(unit, 0.0, 1.0));
  return std::min(jittered, max_delay);
}

Backoff::Backoff(const RetryPolicy& policy, bool service, Clock clock)
    : policy_(policy), service_(service), clock_(clock != nullptr ? clock : &now_seconds), random_state_(std::random_device{}()) {}

std::optional<double> Backoff::failed(std::optional<double> retry_after) {
  if (failures_ == 0) first_failure_ = clock_();
  ++failures_;
  if (!service_ && failures_ >= policy_.attempts) return std::nullopt;
  if (policy_.max_outage > 0 && outage_seconds() >= policy_.max_outage) return std::nullopt;
  double wait = policy_.delay(failures_, next_unit(random_state_));
  if (retry_after) wait = std::max(wait, std::min(*retry_after, policy_.max_delay));
  if (policy_.max_outage > 0) wait = std::min(wait, std::max(0.0, policy_.max_outage - outage_seconds()));
  return wait;
}

void Backoff::succeeded() noexcept { failures_ = 0; }

double Backoff::outage_seconds() const { return failures_ == 0 ? 0.0 : clock_() - first_failure_; }

bool Backoff::bounded() const noexcept { return !service_ || policy_.max_outage > 0; }

std::string Backoff::progress_text() const {
  if (!service_) return "attempt " + std::to_string(failures_ + 1) + " of " + std::to_string(policy_.attempts);
  return "attempt " + std::to_string(failures_ + 1) + ", failing for " + seconds_text(outage_seconds());
}

std::string Backoff::spent_text() const {
  if (policy_.max_outage > 0 && outage_seconds() >= policy_.max_outage) {
    return "after " + seconds_text(outage_seconds()) + " (max_outage)";
  }
  return "after " + std::to_string(failures_) + (failures_ == 1 ? " attempt" : " attempts");
}

bool sleep_unless_stopped(const Context& context, double seconds) {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < until) {
    if (context.stop_requested()) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(50), until - Clock::now()));
  }
  return !context.stop_requested();
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", seconds);
  return text;
}

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
