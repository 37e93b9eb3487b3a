#include "runner.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <unistd.h>

#include <Poco/Logger.h>

#include "checkpoint.hpp"
#include "error_budget.hpp"
#include "outcome_ledger.hpp"
#include "transform_chain.hpp"
#include "exit_codes.hpp"

#include <nlohmann/json.hpp>
#include "logging.hpp"

namespace etl::host {

using Clock = std::chrono::steady_clock;

HostContext::HostContext(std::string plugin_name, const RunStop& stop, bool downstream, std::shared_ptr<RunServices> services)
    : plugin_name_(std::move(plugin_name)),
      stop_(stop),
      downstream_(downstream),
      services_(services ? std::move(services) : std::make_shared<RunServices>()),
      logger_(Poco::Logger::get("plugin." + plugin_name_)) {}

void HostContext::log(sdk::LogLevel level, std::string_view message) noexcept {
  try {
    const std::string text(message);
    switch (level) {
      case sdk::LogLevel::debug: logger_.debug(text); break;
      case sdk::LogLevel::info: logger_.information(text); break;
      case sdk::LogLevel::warning: logger_.warning(text); break;
      case sdk::LogLevel::error: logger_.error(text); break;
    }
  } catch (...) {
    // Logging must never take the plugin down with it.
  }
}

bool HostContext::stop_requested() const noexcept {
  return downstream_ ? stop_.downstream_requested() : stop_.requested();
}

std::string_view HostContext::plugin_name() const noexcept { return plugin_name_; }

bool HostContext::is_service() const noexcept { return services_->service(); }

void HostContext::set_ready(bool ready, std::string_view reason) noexcept {
  try {
    services_->set_ready(plugin_name_, ready, std::string(reason));
  } catch (...) {
  }
}

bool HostContext::pipeline_ready(std::string* reason) const { return services_->ready(reason); }

int HostContext::retry_after_seconds() const noexcept { return 2; }

void HostContext::set_gauge(std::string_view name, std::string_view help, double value) noexcept {
  try {
    services_->set_gauge(plugin_name_, std::string(name), std::string(help), value);
  } catch (...) {
  }
}

void HostContext::add_counter(std::string_view name, std::string_view help, double amount) noexcept {
  try {
    services_->add_counter(plugin_name_, std::string(name), std::string(help), amount);
  } catch (...) {
  }
}

std::string HostContext::metrics_text() const { return services_->metrics_text(); }

double HostContext::drain_seconds_left() const noexcept { return services_->drain_seconds_left(stop_.stopped_at()); }

StageError::StageError(std::string plugin, std::string stage, const std::string& message)
    : std::runtime_error("plugin '" + plugin + "' failed in stage '" + stage + "': " + message),
      plugin_(std::move(plugin)),
      stage_(std::move(stage)) {}

namespace {

template <class T>
PluginInstance<T> instantiate(const StageSpec& stage, PluginRegistry& registry, const RunStop& stop,
                              std::shared_ptr<RunServices> services = nullptr) {
  const PluginInfo& info = registry.resolve(stage.plugin);
  PluginInstance<T> instance;
  instance.library = info.descriptor;
  instance.name = info.name;
  instance.context = std::make_unique<HostContext>(info.name, stop, !std::is_same_v<T, sdk::Source>, std::move(services));
  const std::string config = stage.config.dump();
  const sdk::PluginArgs args{config, *instance.context};
  instance.object = call_plugin(info.name, "configure", [&]() -> std::unique_ptr<T> {
    try {
      if constexpr (std::is_same_v<T, sdk::Source>) {
        return info.descriptor->create_source(args);
      } else if constexpr (std::is_same_v<T, sdk::Transform>) {
        return info.descriptor->create_transform(args);
      } else if constexpr (std::is_same_v<T, sdk::Sink>) {
        return info.descriptor->create_sink(args);
      } else {
        return info.descriptor->create_reporter(args);
      }
    } catch (const sdk::ConfigError& e) {
      throw StageError(info.name, "configure", stage.pointer + "/config" + e.path() + ": " + e.what());
    }
  });
  if (!instance.object) throw StageError(info.name, "configure", "the factory returned nothing");
  return instance;
}

std::string format_rate(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", value);
  return buffer;
}

/// Progress of a long run, on stderr only: a bar redrawn in place on a terminal, otherwise a
/// log line every `interval` seconds (so logs of scheduled runs stay readable).
class Progress {
 public:
  Progress(double interval, std::optional<std::uint64_t> expected, Clock::time_point started)
      : terminal_(::isatty(STDERR_FILENO) == 1),
        interval_(terminal_ ? 0.25 : interval),
        expected_(expected),
        started_(started),
        next_(started + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(terminal_ ? 1.0 : interval))) {}

  /// How often update() should be called; zero when progress is off.
  [[nodiscard]] std::chrono::milliseconds period() const {
    if (interval_ <= 0) return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(terminal_ ? 250 : std::clamp<long>(static_cast<long>(interval_ * 250), 50, 1000));
  }

  /// `waiting` is how long the current read of the source has taken so far, if one is running.
  void update(std::uint64_t received, std::uint64_t settled, std::uint64_t ok, std::uint64_t rejected, std::uint64_t failed,
              Clock::duration waiting = Clock::duration::zero()) {
    if (interval_ <= 0) return;
    const auto now = Clock::now();
    if (now < next_) return;
    next_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval_));
    const double elapsed = std::chrono::duration<double>(now - started_).count();
    const double rate = elapsed > 0 ? static_cast<double>(settled) / elapsed : 0;
    std::string eta;
    if (expected_ && rate > 0 && *expected_ > settled) {
      const auto seconds = static_cast<long long>((*expected_ - settled) / rate);
      eta = ", ETA " + std::to_string(seconds / 60) + "m" + (seconds % 60 < 10 ? "0" : "") + std::to_string(seconds % 60) + "s";
    }
    if (!terminal_) {
      host_logger().information("progress: received " + std::to_string(received) +
                                (expected_ ? " of " + std::to_string(*expected_) : std::string()) + ", ok " +
                                std::to_string(ok) + ", rejected " + std::to_string(rejected) + ", failed " +
                                std::to_string(failed) + ", " + format_rate(rate) + " rows/s" + eta +
                                waiting_note(waiting));
      return;
    }
    std::string line = "\r\033[K";
    if (expected_ && *expected_ > 0) {
      const double fraction = std::min(1.0, static_cast<double>(settled) / static_cast<double>(*expected_));
      const int filled = static_cast<int>(fraction * 30);
      line += "[" + std::string(filled, '#') + std::string(30 - filled, '.') + "] ";
      line += std::to_string(settled) + "/" + std::to_string(*expected_);
    } else {
      line += std::to_string(settled) + " done";
    }
    line += ", " + format_rate(rate) + " rows/s" + eta + waiting_note(waiting);
    drawn_ = true;
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }

  void finish() {
    if (drawn_) std::fputs("\r\033[K", stderr);
  }

 private:
  /// A source blocked for longer than a progress interval is worth saying (a silent provider).
  [[nodiscard]] std::string waiting_note(Clock::duration waiting) const {
    const double seconds = std::chrono::duration<double>(waiting).count();
    if (seconds < std::max(1.0, interval_)) return {};
    return ", waiting for the source for " + std::to_string(static_cast<long long>(seconds)) + " s";
  }

  bool terminal_;
  double interval_;
  std::optional<std::uint64_t> expected_;
  Clock::time_point started_;
  Clock::time_point next_;
  bool drawn_ = false;
};

/// Calls `tick` every `period` on a thread of its own until destroyed, so that progress shows
/// while the source or the sink is blocked, not only between batches.
class Ticker {
 public:
  Ticker(std::chrono::milliseconds period, std::function<void()> tick) {
    if (period.count() <= 0) return;
    thread_ = std::thread([this, period, tick = std::move(tick)] {
      std::unique_lock lock(mutex_);
      while (!wake_.wait_for(lock, period, [this] { return done_; })) {
        lock.unlock();
        tick();
        lock.lock();
      }
    });
  }
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  ~Ticker() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

void create_stage(const StageSpec& stage, PluginRegistry& registry, const RunStop& stop) {
  const PluginInfo& info = registry.resolve(stage.plugin);
  switch (info.kind) {
    case sdk::PluginKind::source: instantiate<sdk::Source>(stage, registry, stop); break;
    case sdk::PluginKind::sink: instantiate<sdk::Sink>(stage, registry, stop); break;
    case sdk::PluginKind::reporter: instantiate<sdk::Reporter>(stage, registry, stop); break;
    case sdk::PluginKind::transform: instantiate<sdk::Transform>(stage, registry, stop); break;
  }
}

PipelinePlugins create_plugins(const PipelineSpec& spec, PluginRegistry& registry, const RunStop& stop) {
  for (const StageSpec* stage : spec.stages()) {
    for (const auto& secret : stage->secrets) Redactor::instance().add(secret);
  }
  for (const auto& secret : spec.settings_secrets) Redactor::instance().add(secret);
  PipelinePlugins plugins;
  plugins.services = std::make_shared<RunServices>(spec.name.empty() ? spec.path : spec.name,
                                                   spec.settings.value("drain_timeout", 10.0));
  plugins.source = instantiate<sdk::Source>(spec.source, registry, stop, plugins.services);
  // A source that runs until stopped makes the pipeline a service: known before anything opens.
  if (const auto* long_running = dynamic_cast<const sdk::LongRunning*>(plugins.source.object.get())) {
    plugins.services->set_service(
        call_plugin(plugins.source.name, "configure", [&] { return long_running->runs_until_stopped(); }));
  }
  for (const auto& stage : spec.transforms) {
    plugins.transforms.push_back(instantiate<sdk::Transform>(stage, registry, stop, plugins.services));
  }
  plugins.sink = instantiate<sdk::Sink>(spec.sink, registry, stop, plugins.services);
  for (const auto& stage : spec.reporters) {
    plugins.reporters.push_back(instantiate<sdk::Reporter>(stage, registry, stop, plugins.services));
  }
  return plugins;
}

RunResult run_pipeline(const PipelineSpec& spec, PipelinePlugins& plugins, const RunOptions& options) {
  Poco::Logger& logger = host_logger();
  RunStop local_stop;
  RunStop& stop = options.stop != nullptr ? *options.stop : local_stop;
  const auto started = Clock::now();

  // Checked when the pipeline was loaded (check_settings), so this cannot throw here.
  OutcomeLedger ledger(plugins.reporters, stop, ErrorBudget(spec.settings.value("max_rejected", nlohmann::json())));
  sdk::Source& source = *plugins.source.object;
  sdk::Sink& sink = *plugins.sink.object;
  const std::string& source_name = plugins.source.name;
  const std::string& sink_name = plugins.sink.name;

  std::string source_error;
  std::string transform_error;
  std::string sink_error;
  std::uint64_t received = 0;
  std::atomic<std::uint64_t> received_so_far{0};
  // The host's own metrics for a service's /metrics, read from the ledger while the run goes on.
  struct StopCounting {
    RunServices* services;
    ~StopCounting() {
      if (services != nullptr) services->count_with({});
    }
  } stop_counting{plugins.services.get()};
  if (plugins.services) {
    plugins.services->count_with([&ledger, &received_so_far] {
      const auto counts = ledger.counts();
      RunServices::Counts out;
      out.received = received_so_far.load();
      out.ok = counts.ok;
      out.dropped = counts.dropped;
      out.rejected = counts.rejected;
      out.failed = counts.failed;
      out.rejected_at_source = counts.rejected_at_source;
      out.rejected_at_transform = counts.rejected_at_transform;
      out.rejected_at_sink = counts.rejected_at_sink;
      out.in_flight = ledger.pending();
      return out;
    });
  }
  std::uint64_t next_sequence = 0;  // source records: 1, 2, 3, ... in the order read() yields them
  std::uint64_t next_added = sdk::kFirstAddedSequence - 1;  // records transforms add

  sdk::RunInfo run_info;
  run_info.pipeline = spec.path;
  run_info.source_plugin = source_name;
  for (const auto& transform : plugins.transforms) run_info.transform_plugins.push_back(transform.name);
  run_info.sink_plugin = sink_name;

  bool source_open = false;
  bool sink_open = false;
  bool wants_acknowledgements = false;

  // State: the source resumes from the committed position, and positions behind settled records
  // are committed as the run goes (on the reporter thread, after the reports have them).
  StateRun* const state = options.state;
  sdk::Resumable* const resumable = state != nullptr ? dynamic_cast<sdk::Resumable*>(&source) : nullptr;
  Checkpoints checkpoints(state != nullptr && state->commit_past_failed);
  std::string state_error;
  std::mutex commit_mutex;  // the reporter thread's checkpoints and the final one
  std::optional<SourcePosition> uncommitted;  // settled, not yet in the store (a commit failed)
  std::optional<SavedState> last_committed;
  Clock::time_point next_commit = Clock::now();
  bool commit_failure_logged = false;
  const auto commit_settled = [&](bool final) {
    std::lock_guard lock(commit_mutex);
    const auto now = Clock::now();
    if ((!final && now < next_commit) || !state_error.empty()) return;
    next_commit = now + state->commit_interval;
    if (auto newer = checkpoints.committable()) uncommitted = std::move(newer);
    try {
      if (!uncommitted) {
        state->store->renew();
        return;
      }
      // A record behind the position must be in every report before the position is durable.
      if (!ledger.flush_reporters()) return;
      SavedState saved{spec.name, source_name, uncommitted->text, utc_now_millis(), state->run_id,
                       uncommitted->after_sequence};
      state->store->commit(saved);
      if (commit_failure_logged) logger.information("state: committing again to " + state->store->describe());
      commit_failure_logged = false;
      resumable->committed(saved.position);
      logger.debug("state: committed " + saved.position + " (" + std::to_string(saved.settled) + " records settled)");
      uncommitted.reset();
      last_committed = std::move(saved);
    } catch (const StateLeaseLost& e) {
      state_error = e.what();
      stop.request();
      logger.error(state_error);
    } catch (const std::exception& e) {
      // The store is away (a database restarting): what settled stays to commit next time.
      if (final) {
        state_error = std::string("the final state could not be committed: ") + e.what();
      } else if (!commit_failure_logged) {
        commit_failure_logged = true;
        logger.warning(std::string("state: cannot commit (") + e.what() + "); retrying every " +
                       std::to_string(state->commit_interval.count()) + " ms");
      }
    }
  };
  if (state != nullptr) {
    if (resumable == nullptr) {
      source_error = "source '" + source_name + "' keeps no position, so settings.state does not apply to it";
    } else {
      const std::string from = state->resume ? state->resume->position : std::string();
      try {
        call_plugin(source_name, "resume", [&] { resumable->resume_from(from); });
        checkpoints.resumed_from(from);
        logger.information(state->resume ? "state: resuming after " + from + " (committed " + state->resume->committed_at +
                                               " by run " + state->resume->run + ")"
                                         : std::string("state: no position committed: reading from the start"));
      } catch (const StageError& e) {
        source_error = e.what();
      }
    }
  }
  if (source_error.empty()) {  // not opened when it could not resume
    try {
      call_plugin(source_name, "open", [&] { source.open(); });
      source_open = true;
      // A source may learn its fields from its input (a CSV header), so they are asked after open().
      run_info.fields = call_plugin(source_name, "fields", [&] { return source.fields(); });
      wants_acknowledgements = call_plugin(source_name, "wants_acknowledgements", [&] { return source.wants_acknowledgements(); });
    } catch (const StageError& e) {
      source_error = e.what();
    }
  }
  const bool tracks_positions = resumable != nullptr && source_error.empty();
  if (wants_acknowledgements || tracks_positions) {
    ledger.acknowledge_with([&, wants_acknowledgements, tracks_positions](std::uint64_t sequence, const sdk::Outcome& outcome) {
      if (tracks_positions) checkpoints.settled(sequence, outcome.status);
      if (wants_acknowledgements) call_plugin(source_name, "acknowledge", [&] { source.acknowledge(sequence, outcome); });
    });
  }
  if (tracks_positions) ledger.checkpoint_with([&] { commit_settled(false); }, state->commit_interval);
  ledger.open_reporters(run_info);

  if (source_error.empty() && ledger.reporter_error().empty()) {
    for (auto& transform : plugins.transforms) {
      try {
        call_plugin(transform.name, "open", [&] { transform.object->open(); });
      } catch (const StageError& e) {
        transform_error = e.what();
        break;
      }
    }
  }
  if (source_open && transform_error.empty() && source_error.empty()) {
    try {
      call_plugin(sink_name, "open", [&] { sink.open(ledger); });
      sink_open = true;
    } catch (const StageError& e) {
      sink_error = e.what();
    }
  }

  std::vector<TransformChain::Stage> chain_stages;
  for (std::size_t i = 0; i < plugins.transforms.size(); ++i) {
    chain_stages.push_back({plugins.transforms[i].name, plugins.transforms[i].object.get(),
                            i < spec.transforms.size() ? spec.transforms[i].when : std::nullopt});
  }
  TransformChain chain(std::move(chain_stages),
                       TransformChain::Hooks{
                           [&](sdk::Record record, sdk::Outcome outcome) { ledger.settle_now(std::move(record), std::move(outcome)); },
                           [&] { return ++next_added; },
                           [&](std::uint64_t root, const std::vector<std::uint64_t>& members) { ledger.group(root, members); }});

  if (source_open && sink_open && source_error.empty()) {
    const std::size_t batch_size = spec.settings.value("batch_size", 1000);
    std::optional<std::uint64_t> expected;
    try {
      expected = call_plugin(source_name, "expected", [&] { return source.expected(); });
    } catch (const StageError&) {
      // Progress without a total is still progress.
    }
    Progress progress(spec.settings.value("progress_interval", 5.0), expected, started);
    std::atomic<Clock::rep> reading_since{0};  // when the current source read began, 0 between reads
    {
      Ticker ticker(progress.period(), [&] {
        const auto counts = ledger.counts();
        const Clock::rep since = reading_since.load();
        progress.update(received_so_far.load(), counts.settled(), counts.ok, counts.rejected, counts.failed,
                        since == 0 ? Clock::duration::zero() : Clock::now() - Clock::time_point(Clock::duration(since)));
      });
      sdk::Batch batch;
      sdk::Batch to_sink;
      bool more = true;
      // A source that drains on a stop is read until it ends; any other is not read again.
      const bool drains = dynamic_cast<const sdk::DrainsOnStop*>(&source) != nullptr;
      stop.hold_downstream(drains);
      while (more && (drains || !stop.requested())) {
        batch.clear();
        batch.reserve(std::min<std::size_t>(batch_size, 4096));
        reading_since.store(Clock::now().time_since_epoch().count());
        try {
          more = call_plugin(source_name, "read", [&] { return source.read(batch, batch_size); });
        } catch (const StageError& e) {
          source_error = e.what();
          more = false;
        }
        reading_since.store(0);
        bool plain = chain.empty();  // nothing to take out of the batch: hand it to the sink as it is
        for (auto& record : batch) {
          record.sequence = ++next_sequence;
          if (record.refusal) plain = false;
        }
        if (tracks_positions) {
          try {
            checkpoints.yielded(next_sequence, call_plugin(source_name, "position", [&] { return resumable->position(); }));
          } catch (const StageError& e) {
            if (source_error.empty()) source_error = e.what();
            more = false;
          }
        }
        received += batch.size();
        received_so_far.store(received);
        if (batch.empty()) continue;
        if (stop.requested() && !drains) {
          ledger.fail_unsent(batch, 0, "not attempted: the run was stopped");
          break;
        }
        sdk::Batch* outgoing = &batch;
        if (!plain) {
          to_sink.clear();
          to_sink.reserve(batch.size());  // its buffer went to the sink with the last batch
          std::size_t done = 0;
          try {
            for (; done < batch.size(); ++done) {
              sdk::Record& record = batch[done];
              if (record.refusal) {
                sdk::Outcome outcome = sdk::Outcome::rejected(record.refusal->code, record.refusal->message);
                outcome.stage = sdk::Stage::source;
                record.refusal.reset();
                ledger.settle_now(std::move(record), std::move(outcome));
              } else if (chain.empty()) {
                to_sink.push_back(std::move(record));
              } else {
                chain.apply(std::move(record), to_sink);
              }
            }
          } catch (const TransformChain::StageFailure& failure) {
            transform_error = "plugin '" + failure.plugin + "' failed in stage 'transform': " + failure.reason;
            ledger.fail_unsent(batch, done + 1, "not processed: transform '" + failure.plugin + "' failed");
            stop.request();
          }
          outgoing = &to_sink;
        }
        // The ledger shares the batch from here (no copy of a record): the next read fills a new one.
        const auto handed = std::make_shared<const sdk::Batch>(std::move(*outgoing));
        outgoing->clear();
        ledger.add(handed);
        try {
          if (!handed->empty()) call_plugin(sink_name, "write", [&] { sink.write(*handed); });
        } catch (const StageError& e) {
          sink_error = e.what();
          break;
        }
        if (!transform_error.empty()) break;
      }
    }
    progress.finish();
    // finish() also after a failed write: the sink settles the rows it still holds, so none
    // is reported failed here while its commit could still arrive.
    try {
      call_plugin(sink_name, "finish", [&] { sink.finish(); });
    } catch (const StageError& e) {
      if (sink_error.empty()) sink_error = e.what();
    }
    ledger.check_budget_at_end();
  }
  const std::string budget_error = ledger.budget_error();
  // Whatever the sink did not settle is failed now; late outcomes are refused by the ledger.
  if (sink_error.empty() && sink_open && ledger.pending() != 0) {
    sink_error = "plugin '" + sink_name + "' finished without an outcome for " +
                 std::to_string(ledger.pending()) + " record(s)";
  }
  if (ledger.pending() != 0) {
    ledger.fail_remaining(sink_error.empty() ? "no outcome from the sink"
                                             : "not written: " + sink_error);
  }
  // The source's last acknowledgements (an outbox marked) belong to the run's outcome.
  ledger.wait_for_reports();
  // What settled is committed, after a stop or a failure too. The reporter thread is idle now
  // (everything is reported), and commit_mutex keeps its own checkpoint out.
  if (tracks_positions && ledger.reporter_error().empty()) {
    commit_settled(true);
    if (const auto held = checkpoints.held_at()) {
      logger.warning("state: record " + std::to_string(*held) +
                     " of this run failed: the committed position stays before it, so the next run reads it again "
                     "(settings.state.commit_past_failed: true commits past failed records)");
    }
  }
  if (const std::string acknowledged = ledger.acknowledge_error(); !acknowledged.empty() && source_error.empty()) {
    source_error = acknowledged;
  }
  if (!source_error.empty()) logger.error(source_error);
  if (!transform_error.empty()) logger.error(transform_error);
  if (!sink_error.empty()) logger.error(sink_error);

  sdk::SourceStats stats;
  if (source_open) {
    try {
      stats = call_plugin(source_name, "stats", [&] { return source.stats(); });
    } catch (const StageError& e) {
      logger.warning(e.what());
    }
  }

  RunResult result;
  sdk::Summary& summary = result.summary;
  const auto counts = ledger.counts();
  summary.requested = stats.requested;
  summary.received = received;
  summary.ok = counts.ok;
  summary.dropped = counts.dropped;
  summary.rejected = counts.rejected;
  summary.rejected_at_source = counts.rejected_at_source;
  summary.rejected_at_transform = counts.rejected_at_transform;
  summary.rejected_at_sink = counts.rejected_at_sink;
  summary.failed = counts.failed;
  summary.commit_unknown = counts.commit_unknown;
  summary.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  summary.rows_per_second = summary.seconds > 0 ? static_cast<double>(counts.settled()) / summary.seconds : 0;

  const int signal_code = stop.signal_code();
  if (signal_code != 0 && !(stop.internal_first() && !budget_error.empty())) {
    result.exit_code = signal_code;
    summary.stop_reason = "stopped by a signal";
  } else if (!budget_error.empty()) {
    result.exit_code = exit_code::error_budget;
    summary.stop_reason = budget_error;
  } else if (!sink_error.empty()) {
    result.exit_code = exit_code::sink_failed;
    summary.stop_reason = sink_error;
  } else if (!transform_error.empty()) {
    result.exit_code = exit_code::transform_failed;
    summary.stop_reason = transform_error;
  } else if (!source_error.empty()) {
    result.exit_code = exit_code::source_failed;
    summary.stop_reason = source_error;
  } else if (!ledger.reporter_error().empty()) {
    result.exit_code = exit_code::reporter_failed;
    summary.stop_reason = ledger.reporter_error();
  } else if (!state_error.empty()) {
    result.exit_code = exit_code::state_failed;
    summary.stop_reason = state_error;
  }
  summary.completed = result.exit_code == exit_code::ok;
  if (result.exit_code == exit_code::ok && summary.failed != 0) {
    // The run reached its end, but rows a scheduler would expect stored are not: say so in
    // the exit code, not only in the report.
    result.exit_code = exit_code::sink_failed;
    summary.stop_reason = std::to_string(summary.failed) + " record(s) could not be written (status failed; the report says why)";
    logger.error(summary.stop_reason);
  }
  if (result.exit_code == exit_code::ok && ledger.stray_outcomes() != 0) {
    result.exit_code = exit_code::sink_failed;
    summary.stop_reason = "sink '" + sink_name + "' broke the outcome protocol: it delivered " +
                          std::to_string(ledger.stray_outcomes()) +
                          " outcome(s) for records not awaiting one (a second outcome for a record, or an unknown "
                          "record); each record was reported once, with its first outcome";
    logger.error(summary.stop_reason);
  }
  summary.exit_code = result.exit_code;
  if (!state_error.empty()) logger.error(state_error);
  result.committed = last_committed;

  // Only a run that went to the source's end "went on with what came"; after a stop or a
  // failure the shortfall is explained by the stop reason instead.
  if (stats.requested && received < *stats.requested && source_error.empty() && sink_error.empty() &&
      transform_error.empty() && budget_error.empty() && signal_code == 0 && ledger.reporter_error().empty()) {
    logger.warning("source '" + source_name + "' asked for " + std::to_string(*stats.requested) +
                   " records and received " + std::to_string(received) +
                   "; the run went on with what came");
  }

  summary.stop_reason = Redactor::instance().redact(summary.stop_reason);
  ledger.finish_reporters(summary);
  if (result.exit_code == exit_code::ok && !ledger.reporter_error().empty()) {
    result.exit_code = exit_code::reporter_failed;
    summary.exit_code = result.exit_code;
    summary.completed = false;
  }

  logger.information(
      "summary: " +
      (summary.requested ? "requested " + std::to_string(*summary.requested) + ", " : std::string()) +
      "received " + std::to_string(summary.received) + ", ok " + std::to_string(summary.ok) +
      (summary.dropped != 0 ? ", dropped " + std::to_string(summary.dropped) : std::string()) +
      ", rejected " + std::to_string(summary.rejected) +
      (summary.rejected != summary.rejected_at_sink
           ? " (source " + std::to_string(summary.rejected_at_source) + ", transform " +
                 std::to_string(summary.rejected_at_transform) + ", sink " + std::to_string(summary.rejected_at_sink) + ")"
           : std::string()) +
      ", failed " + std::to_string(summary.failed) +
      (summary.commit_unknown != 0 ? " (commit outcome unknown " + std::to_string(summary.commit_unknown) + ")"
                                   : std::string()) +
      ", " + format_rate(summary.seconds) + " s, " +
      format_rate(summary.rows_per_second) + " rows/s, exit code " +
      std::to_string(result.exit_code));
  return result;
}

}  // namespace etl::host
