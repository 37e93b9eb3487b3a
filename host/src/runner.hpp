#pragma once
// Running a pipeline: instantiating plugins, driving their lifecycle, settling every record.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "etl/sdk/plugin.hpp"
#include "etl/sdk/service.hpp"
#include "pipeline.hpp"
#include "plugin_registry.hpp"
#include "services.hpp"
#include "state_store.hpp"

namespace Poco {
class Logger;
}

namespace etl::host {

/// Why a run should stop. Signals (process-wide, set only by the signal handler) and the run's
/// own reasons (error budget, a failed reporter) are kept apart: an internal stop must not make
/// the first signal look like a second one, and must not outlive its run (schedule goes on).
class RunStop {
 public:
  explicit RunStop(const std::atomic<int>* signal_code = nullptr) noexcept : signal_code_(signal_code) {}
  [[nodiscard]] bool requested() const noexcept {
    const bool stop = internal_.load() || signal_code() != 0;
    if (stop && stopped_at_.load(std::memory_order_relaxed) == 0) {
      // Seen first here (plugins ask every few tens of milliseconds): the drain counts from now.
      std::int64_t none = 0;
      stopped_at_.compare_exchange_strong(none, std::chrono::steady_clock::now().time_since_epoch().count());
    }
    return stop;
  }
  /// When the stop was first seen, if it was.
  [[nodiscard]] std::optional<std::chrono::steady_clock::time_point> stopped_at() const noexcept {
    (void)requested();
    const std::int64_t at = stopped_at_.load();
    if (at == 0) return std::nullopt;
    return std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(at));
  }
  /// The exit code the signal asks for (130, 143), or 0 when no signal came.
  [[nodiscard]] int signal_code() const noexcept {
    return signal_code_ != nullptr ? signal_code_->load(std::memory_order_relaxed) : 0;
  }
  /// Stops the run for a reason of its own (it is logged and in the summary).
  void request() noexcept {
    if (!internal_.exchange(true) && signal_code() == 0) internal_first_.store(true);
  }
  /// Whether the run's own reason came before any signal: its exit code is then the run's.
  [[nodiscard]] bool internal_first() const noexcept { return internal_first_.load(); }

  /// The stop as the stages after the source see it: held back for a source that drains on a
  /// stop (sdk::DrainsOnStop), so that what it had accepted is written and settled rather than
  /// refused (the sink's own retry bounds, or a second signal, still end the run).
  [[nodiscard]] bool downstream_requested() const noexcept { return requested() && !hold_downstream_.load(); }
  void hold_downstream(bool hold) noexcept { hold_downstream_.store(hold); }

 private:
  const std::atomic<int>* signal_code_;
  std::atomic<bool> hold_downstream_{false};
  std::atomic<bool> internal_{false};
  std::atomic<bool> internal_first_{false};
  mutable std::atomic<std::int64_t> stopped_at_{0};  // steady clock ticks; 0: not yet
};

/// The Context the host gives each plugin object, with the services of its pipeline.
class HostContext final : public sdk::Context, public sdk::ServiceContext {
 public:
  /// `downstream`: a transform, sink or reporter, which sees RunStop::downstream_requested().
  HostContext(std::string plugin_name, const RunStop& stop, bool downstream, std::shared_ptr<RunServices> services);
  void log(sdk::LogLevel level, std::string_view message) noexcept override;
  [[nodiscard]] bool stop_requested() const noexcept override;
  [[nodiscard]] std::string_view plugin_name() const noexcept override;

  [[nodiscard]] bool is_service() const noexcept override;
  void set_ready(bool ready, std::string_view reason) noexcept override;
  [[nodiscard]] bool pipeline_ready(std::string* reason) const override;
  [[nodiscard]] int retry_after_seconds() const noexcept override;
  void set_gauge(std::string_view name, std::string_view help, double value) noexcept override;
  void add_counter(std::string_view name, std::string_view help, double amount) noexcept override;
  [[nodiscard]] std::string metrics_text() const override;
  [[nodiscard]] double drain_seconds_left() const noexcept override;

 private:
  std::string plugin_name_;
  const RunStop& stop_;
  bool downstream_;
  std::shared_ptr<RunServices> services_;
  Poco::Logger& logger_;
};

/// An exception that escaped a plugin, with the plugin's name and the stage it happened in.
class StageError : public std::runtime_error {
 public:
  StageError(std::string plugin, std::string stage, const std::string& message);
  [[nodiscard]] const std::string& plugin() const noexcept { return plugin_; }
  [[nodiscard]] const std::string& stage() const noexcept { return stage_; }

 private:
  std::string plugin_;
  std::string stage_;
};

/// A plugin object together with what must outlive it. Members are destroyed in reverse order:
/// the object first, then its context, then (with the last reference) the library itself.
template <class T>
struct PluginInstance {
  std::shared_ptr<const sdk::PluginDescriptor> library;
  std::string name;
  std::unique_ptr<HostContext> context;
  std::unique_ptr<T> object;

  PluginInstance() = default;
  PluginInstance(PluginInstance&&) noexcept = default;
  PluginInstance& operator=(PluginInstance&&) noexcept = default;
  ~PluginInstance() {
    object.reset();
    context.reset();
  }
};

/// Calls into a plugin and turns any exception into a StageError naming plugin and stage.
template <class F>
decltype(auto) call_plugin(const std::string& plugin, const char* stage, F&& function) {
  try {
    return std::forward<F>(function)();
  } catch (const StageError&) {
    throw;
  } catch (const std::exception& e) {
    throw StageError(plugin, stage, e.what());
  } catch (...) {
    throw StageError(plugin, stage, "unknown exception (not derived from std::exception)");
  }
}

/// Creates one stage's plugin (its config parsed, nothing opened) and drops it; throws
/// StageError when the plugin refuses the config.
void create_stage(const StageSpec& stage, PluginRegistry& registry, const RunStop& stop);

/// Every plugin of a pipeline, created (config parsed) but not opened.
struct PipelinePlugins {
  /// Shared by every plugin's context; declared first, so it outlives them.
  std::shared_ptr<RunServices> services;
  PluginInstance<sdk::Source> source;
  /// In pipeline order, each with its `when` (see PipelineSpec::transforms).
  std::vector<PluginInstance<sdk::Transform>> transforms;
  PluginInstance<sdk::Sink> sink;
  std::vector<PluginInstance<sdk::Reporter>> reporters;
};

/// Creates the plugins of `spec`; throws StageError (stage "configure") on a config a plugin
/// refuses. Registers the pipeline's secrets with the Redactor.
/// `stop` must outlive the plugins.
PipelinePlugins create_plugins(const PipelineSpec& spec, PluginRegistry& registry, const RunStop& stop);

/// A run of a pipeline that keeps state (settings.state), its store already acquired.
struct StateRun {
  StateStore* store = nullptr;
  /// The position the source resumes from; nothing: from the beginning.
  std::optional<SavedState> resume;
  std::string run_id;
  std::chrono::milliseconds commit_interval{1000};
  /// Commit past failed records (settings.state.commit_past_failed; see Checkpoints).
  bool commit_past_failed = false;
};

struct RunOptions {
  /// The stop the plugins were created with; run_pipeline requests it for internal reasons.
  RunStop* stop = nullptr;
  /// Set when the pipeline keeps state: the source must be sdk::Resumable.
  StateRun* state = nullptr;
};

struct RunResult {
  int exit_code = 0;
  sdk::Summary summary;
  /// The state committed last in this run, if one was.
  std::optional<SavedState> committed;
};

/// Runs the pipeline to the end (or until it fails or is stopped). Never throws for plugin
/// failures: they end up in the exit code and the summary, and every record received is reported.
RunResult run_pipeline(const PipelineSpec& spec, PipelinePlugins& plugins, const RunOptions& options);

}  // namespace etl::host
