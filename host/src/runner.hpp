#pragma once
// Running a pipeline: instantiating plugins, driving their lifecycle, settling every record.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/shared_ptr.hpp>

#include "etl/sdk/plugin.hpp"
#include "pipeline.hpp"
#include "plugin_registry.hpp"

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
  [[nodiscard]] bool requested() const noexcept { return internal_.load() || signal_code() != 0; }
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
};

/// The Context the host gives each plugin object.
class HostContext final : public sdk::Context {
 public:
  /// `downstream`: a transform, sink or reporter, which sees RunStop::downstream_requested().
  HostContext(std::string plugin_name, const RunStop& stop, bool downstream);
  void log(sdk::LogLevel level, std::string_view message) noexcept override;
  [[nodiscard]] bool stop_requested() const noexcept override;
  [[nodiscard]] std::string_view plugin_name() const noexcept override;

 private:
  std::string plugin_name_;
  const RunStop& stop_;
  bool downstream_;
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
  boost::shared_ptr<const sdk::PluginDescriptor> library;
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

struct RunOptions {
  /// The stop the plugins were created with; run_pipeline requests it for internal reasons.
  RunStop* stop = nullptr;
};

struct RunResult {
  int exit_code = 0;
  sdk::Summary summary;
};

/// Runs the pipeline to the end (or until it fails or is stopped). Never throws for plugin
/// failures: they end up in the exit code and the summary, and every record received is reported.
RunResult run_pipeline(const PipelineSpec& spec, PipelinePlugins& plugins, const RunOptions& options);

}  // namespace etl::host
