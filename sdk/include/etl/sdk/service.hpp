// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Services (SDK 2.0): pipelines whose source runs until it is stopped (an HTTP server, a
/// followed query). Such a pipeline must never end by accident: a lost database or API is waited
/// out for as long as the service runs, while requests are answered at once (503, "not ready")
/// and the service recovers by itself; only a signal or a configuration that can never work ends
/// it. What the host offers plugins for that, beyond Context:
///
///   - whether the pipeline is a service (its source says so: LongRunning);
///   - readiness: each stage says whether it can do its work now (a sink whose database is
///     unreachable cannot), the host logs each change once and answers for the pipeline;
///   - metrics: stages publish numbers, the host serves them with its own (records by outcome)
///     in Prometheus' text format, which an HTTP source serves on /metrics;
///   - the drain: after a stop, every stage shares one bounded time (settings.drain_timeout) to
///     settle what it holds.
///
/// Reached from a Context with service_of(); a host before SDK 2.0 offers none (nullptr), and a
/// plugin then behaves as in a batch run. These are new interfaces, not new members of the ones
/// in plugin.hpp, so plugins built for ABI 2 before them keep working.

#include <string>
#include <string_view>

#include "etl/sdk/plugin.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// Implemented by a Source that may run until stopped. The host asks once, after creating the
/// plugins and before opening any: true makes the pipeline a service.
class ETL_SDK_API LongRunning {
 public:
  virtual ~LongRunning() = default;
  /// True when this source, as configured, ends only when stopped (http-server; postgres-query
  /// with follow).
  [[nodiscard]] virtual bool runs_until_stopped() const = 0;
};

/// The host's services to the plugins of a pipeline; the Context given to a plugin also derives
/// from it (see service_of()). Thread-safe.
class ETL_SDK_API ServiceContext {
 public:
  virtual ~ServiceContext() = default;

  /// True when the pipeline is a service: transient failures are retried without a bound
  /// (RetryPolicy::max_outage aside) and never end the run.
  [[nodiscard]] virtual bool is_service() const noexcept = 0;

  /// This stage can (true) or cannot (false) do its work now, and why not ("database at
  /// db:5432/app unreachable: connection refused"). Cheap to call often: only changes count.
  virtual void set_ready(bool ready, std::string_view reason) noexcept = 0;
  /// Whether every stage is ready; when not, `reason` gets the first unready stage's reason.
  [[nodiscard]] virtual bool pipeline_ready(std::string* reason) const = 0;
  /// A suggested Retry-After, in whole seconds, for answers refused while not ready.
  [[nodiscard]] virtual int retry_after_seconds() const noexcept = 0;

  /// Publishes a gauge (a value that goes up and down, e.g. connections up). `name` is a
  /// Prometheus metric name ("etl_sink_connections_up"); the host adds the plugin's name as a
  /// label.
  virtual void set_gauge(std::string_view name, std::string_view help, double value) noexcept = 0;
  /// Adds to a counter (a total that only grows, e.g. seconds of outage).
  virtual void add_counter(std::string_view name, std::string_view help, double amount) noexcept = 0;
  /// The pipeline's metrics in Prometheus' text exposition format (version 0.0.4): the host's
  /// (records by outcome, received, in flight, ready) and every stage's gauges and counters.
  [[nodiscard]] virtual std::string metrics_text() const = 0;

  /// Seconds left for settling after a stop (settings.drain_timeout, shared by every stage of
  /// the run, counted from the stop); the whole drain_timeout before a stop; 0 once spent.
  [[nodiscard]] virtual double drain_seconds_left() const noexcept = 0;
};

/// The ServiceContext behind `context`, or nullptr when the host offers none.
inline ServiceContext* service_of(Context& context) noexcept { return dynamic_cast<ServiceContext*>(&context); }
inline const ServiceContext* service_of(const Context& context) noexcept {
  return dynamic_cast<const ServiceContext*>(&context);
}
/// Whether the plugin runs in a service (false on a host that cannot say).
inline bool is_service(const Context& context) noexcept {
  const ServiceContext* service = service_of(context);
  return service != nullptr && service->is_service();
}

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
