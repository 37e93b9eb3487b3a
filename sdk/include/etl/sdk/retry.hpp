// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// The one retry policy every plugin uses: capped exponential backoff with jitter, bounded by a
/// number of failures in a row and/or by how long they have lasted, where progress resets the
/// budget and a stop ends the wait. A `retry` config block means the same in every plugin:
///
///   {"attempts": 5, "initial_delay": 0.5, "max_delay": 30, "max_outage": 0}
///
/// In a batch run the budget ends with `attempts` failures in a row (or `max_outage` seconds,
/// when set). In a service (ServiceContext::is_service(): the source runs until stopped)
/// attempts do not count: a lost database is waited for as long as the service runs, unless
/// `max_outage` bounds it.
///
///   sdk::Backoff backoff(config.retry, sdk::is_service(context));
///   while (true) {
///     try { connect(); backoff.succeeded(); break; }
///     catch (const Transient& e) {
///       const auto wait = backoff.failed();
///       if (!wait) throw sdk::PluginError(e.what() + (" " + backoff.spent_text()));
///       context.log(warning, e.what() + ("; retrying in ... (" + backoff.progress_text() + ")"));
///       if (!sdk::sleep_unless_stopped(context, *wait)) throw ...;
///     }
///   }
///
/// Compiled in the SDK library; plugin-local (not part of the ABI).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "etl/sdk/config.hpp"
#include "etl/sdk/plugin.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// The `retry` config block.
struct RetryPolicy {
  /// Failures in a row without progress before giving up, the first try included; 1 means no
  /// retry. Not counted in a service (see the file comment).
  int attempts = 5;
  /// Seconds before the first retry; doubled for each further one, with jitter.
  double initial_delay = 0.5;
  /// Cap on one wait, in seconds (a Retry-After too).
  double max_delay = 30;
  /// Seconds a run of failures may last before giving up; 0: no time bound.
  double max_outage = 0;

  /// Reads a `retry` block; keys missing from it keep their defaults.
  static RetryPolicy from_config(const ConfigValue& block);
  /// JSON Schema of the block, with `defaults`' values as the defaults.
  static std::string schema(const RetryPolicy& defaults);

  /// Declares a `retry` block in a plugin's ConfigMap, stored in `member`; `description` says
  /// what the plugin retries. The member's initial value gives the defaults.
  template <class Config>
  static typename ConfigMap<Config>::Key& declare(ConfigMap<Config>& map, RetryPolicy Config::*member,
                                                  std::string description) {
    const Config defaults{};
    return map.parse_with("retry", schema(defaults.*member), std::move(description),
                          [member](Config& config, const ConfigValue& value) { config.*member = from_config(value); });
  }

  /// The wait before retry number `retry` (1 for the first): initial_delay × 2^(retry-1), drawn
  /// from [half, full] of that (so that clients that failed together spread out instead of
  /// hammering a recovering server in step), capped at max_delay. `unit` is a number in [0, 1).
  [[nodiscard]] double delay(int retry, double unit) const;
};

/// One retry budget over a run of failures. Not thread-safe: one per loop.
class Backoff {
 public:
  /// Seconds on a steady clock; a test gives its own.
  using Clock = double (*)();

  /// `service`: attempts do not end the budget, only max_outage does.
  Backoff(const RetryPolicy& policy, bool service, Clock clock = nullptr);

  /// A try failed: the seconds to wait before the next one (at least `retry_after` when the
  /// peer said so, capped by max_delay), or nullopt when the budget is spent.
  [[nodiscard]] std::optional<double> failed(std::optional<double> retry_after = std::nullopt);
  /// Progress (a connection made, a row answered): the budget starts again.
  void succeeded() noexcept;

  /// Failures in a row so far.
  [[nodiscard]] int failures() const noexcept { return failures_; }
  /// Seconds since the first failure in a row; 0 when there is none.
  [[nodiscard]] double outage_seconds() const;
  [[nodiscard]] bool bounded() const noexcept;
  /// For log lines: "attempt 3 of 5", or "attempt 3, failing for 12.0 s" when attempts do not count.
  [[nodiscard]] std::string progress_text() const;
  /// Why the budget is spent: "after 5 attempts", "after 300.0 s (max_outage)".
  [[nodiscard]] std::string spent_text() const;
  [[nodiscard]] const RetryPolicy& policy() const noexcept { return policy_; }

 private:
  RetryPolicy policy_;
  bool service_;
  Clock clock_;
  int failures_ = 0;
  double first_failure_ = 0;  // steady clock, seconds
  std::uint64_t random_state_;
};

/// Sleeps `seconds`, waking early when the host asks the run to stop. False when it did.
bool sleep_unless_stopped(const Context& context, double seconds);

/// "1.5 s": a duration for messages.
std::string seconds_text(double seconds);

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
