// etl-host: runs pipelines made of a source, transforms, a sink and reporters, each a plugin;
// the command line (run, validate, plugins, schema), scheduled runs and signals.

#include <csignal>
#include <map>
#include <ctime>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <thread>
#include <unistd.h>

#include <Poco/AutoPtr.h>
#include <Poco/Util/Application.h>
#include <Poco/Util/HelpFormatter.h>
#include <Poco/Util/Option.h>
#include <Poco/Util/OptionSet.h>

#include "etl/sdk/json.hpp"
#include "etl/sdk/version.hpp"
#include "exit_codes.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "pipeline.hpp"
#include "pipeline_schema.hpp"
#include "plugin_registry.hpp"
#include "runner.hpp"
#include "schedule.hpp"
#include "schema_markdown.hpp"
#include "state_store.hpp"

#ifndef ETL_HOST_VERSION
#define ETL_HOST_VERSION "0.0.0"
#endif

namespace {

using namespace etl::host;
using nlohmann::json;
using Poco::Util::Option;

// Written only by the signal handler: a run's own stop reasons live in its RunStop.
std::atomic<int> g_signal_code{0};
std::atomic<int> g_signals{0};

extern "C" void on_stop_signal(int signal_number) {
  const int code = signal_number == SIGINT ? exit_code::interrupted : exit_code::terminated;
  if (g_signals.fetch_add(1) != 0) {
    // A second signal: the user wants out now. Reports stay under their .partial names, the
    // previous ones untouched; a code of its own says so.
    static const char message[] = "etl-host: second signal: exiting at once; reports are left as .partial files\n";
    [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
    ::_exit(exit_code::killed_by_second_signal);
  }
  g_signal_code.store(code);
  static const char message[] =
      "etl-host: stopping: settling records in flight (signal again to exit at once)\n";
  [[maybe_unused]] auto ignored = ::write(STDERR_FILENO, message, sizeof message - 1);
}

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A closed stdout (etl-host run ... | head) must be an error we report, not a silent death.
  std::signal(SIGPIPE, SIG_IGN);
}

/// The schedule's clock: the system's, its sleep woken by a stop signal.
class SystemScheduleClock final : public ScheduleClock {
 public:
  TimePoint now() override { return std::chrono::system_clock::now(); }
  bool sleep_until(TimePoint until) override {
    while (std::chrono::system_clock::now() < until) {
      if (g_signal_code.load() != 0) return false;
      std::this_thread::sleep_for(
          std::min<std::chrono::system_clock::duration>(std::chrono::milliseconds(200), until - std::chrono::system_clock::now()));
    }
    return g_signal_code.load() == 0;
  }
};

class EtlHostApplication : public Poco::Util::Application {
 public:
  EtlHostApplication() {
    setUnixOptions(true);
  }

 protected:
  void defineOptions(Poco::Util::OptionSet& options) override {
    options.addOption(Option("help", "h", "show this help and exit"));
    options.addOption(Option("version", "", "print the version and exit"));
    options.addOption(Option("set", "", "override a pipeline value: PATH=VALUE, e.g. source.config.size=20 (run, validate)")
                          .argument("PATH=VALUE")
                          .repeatable(true));
    options.addOption(Option("plugin-path", "", "also look for plugins in DIR (before ETL_PLUGIN_PATH and the bundled plugins)")
                          .argument("DIR")
                          .repeatable(true));
    options.addOption(Option("json", "", "machine-readable output (plugins, validate)"));
    options.addOption(Option("summary-json", "", "write the run summary as JSON to FILE (run)").argument("FILE"));
    options.addOption(Option("log-level", "", "debug, information, warning or error (default: information, or ETL_LOG_LEVEL)")
                          .argument("LEVEL"));
    options.addOption(Option("metrics-push", "", "push run metrics to a Prometheus Pushgateway at URL (run, schedule; or ETL_PUSHGATEWAY_URL)")
                          .argument("URL"));
    options.addOption(Option("every", "", "schedule: run every DURATION (e.g. 15m, 90s, 1h30m)").argument("DURATION"));
    options.addOption(Option("cron", "", "schedule: run at the minutes a five-field cron expression names (UTC unless TZ is set)")
                          .argument("EXPRESSION"));
    options.addOption(Option("max-runs", "", "schedule: stop after N runs").argument("N"));
    options.addOption(Option("from-start", "", "run: read the source from its beginning this once, ignoring the committed state "
                                               "(settings.state); the run commits its own positions as usual"));
  }

  void handleOption(const std::string& name, const std::string& value) override {
    Application::handleOption(name, value);
    if (name == "help") {
      help_ = true;
    } else if (name == "version") {
      version_ = true;
    } else if (name == "set") {
      overrides_.push_back(parse_override(value));
    } else if (name == "plugin-path") {
      plugin_paths_.push_back(value);
    } else if (name == "json") {
      json_ = true;
    } else if (name == "summary-json") {
      summary_json_ = value;
    } else if (name == "log-level") {
      log_level_ = value;
    } else if (name == "metrics-push") {
      metrics_push_ = value;
    } else if (name == "every") {
      every_ = value;
    } else if (name == "cron") {
      cron_ = value;
    } else if (name == "max-runs") {
      max_runs_ = value;
    } else if (name == "from-start") {
      from_start_ = true;
    }
  }

  int main(const ArgVec& args) override {
    try {
      configure_logging(log_level_.empty() ? default_log_level() : log_level_);
    } catch (const std::exception&) {
      std::cerr << "etl-host: --log-level " << log_level_
                << ": expected debug, information, warning or error\n";
      return exit_code::usage;
    }
    if (help_) {
      print_help();
      return exit_code::ok;
    }
    if (version_) {
      std::cout << "etl-host " << ETL_HOST_VERSION << " (plugin SDK " << ETL_SDK_VERSION_STRING
                << ", ABI " << etl::sdk::kAbiVersion << ")\n";
      return exit_code::ok;
    }
    if (args.empty()) {
      print_help();
      return exit_code::usage;
    }
    const std::string& command = args.front();
    const ArgVec rest(args.begin() + 1, args.end());
    try {
      if (command == "run") return run_command(rest);
      if (command == "validate") return validate_command(rest);
      if (command == "plugins") return plugins_command(rest);
      if (command == "schema") return schema_command(rest);
      if (command == "schedule") return schedule_command(rest);
      if (command == "state") return state_command(rest);
      std::cerr << "etl-host: unknown command '" << command
                << "'; commands: run, validate, schedule, state, plugins, schema (see --help)\n";
      return exit_code::usage;
    } catch (const std::exception& e) {
      host_logger().fatal(std::string("internal error: ") + e.what());
      return exit_code::internal_error;
    }
  }

 private:
  static std::string default_log_level() {
    const char* env = std::getenv("ETL_LOG_LEVEL");
    return env != nullptr && *env != '\0' ? env : "information";
  }

  void print_help() const {
    Poco::Util::HelpFormatter formatter(options());
    formatter.setCommand("etl-host");
    formatter.setWidth(100);
    formatter.setUsage("COMMAND [OPTIONS]");
    formatter.setHeader(
        "Moves records from a source plugin to a sink plugin and reports every record's outcome.\n\n"
        "Commands:\n"
        "  run PIPELINE        run a pipeline file (e.g. pipelines/tokens.json)\n"
        "  schedule PIPELINE   run it --every DURATION or on a --cron schedule, never overlapping\n"
        "  validate PIPELINE   check a pipeline without moving data (exit 0 when valid)\n"
        "  state show PIPELINE   the position a pipeline with settings.state resumes from (--json)\n"
        "  state reset PIPELINE  forget it: the next run reads the source from its beginning\n"
        "  plugins             list the plugins found (--json: descriptors with schemas)\n"
        "  schema              print a JSON Schema for pipeline files, plugin configs included\n\n"
        "Options:");
    std::string codes;
    for (const auto& [code, meaning] : exit_code::kAll) codes += (codes.empty() ? "" : ", ") + std::to_string(code) + " " + meaning;
    formatter.setFooter("Plugins are searched in --plugin-path, then ETL_PLUGIN_PATH (colon-separated), then " +
                        PluginRegistry::bundled_plugin_dir() + ".\nExit codes: " + codes + ".");
    formatter.format(std::cout);
  }

  bool expect_pipeline_argument(const ArgVec& args, const std::string& command) const {
    if (args.size() == 1) return true;
    std::cerr << "etl-host " << command
              << (args.empty() ? ": missing the pipeline file, e.g. etl-host " + command +
                                     " pipelines/tokens.json\n"
                               : ": expected one pipeline file, got " + std::to_string(args.size()) +
                                     " arguments\n");
    return false;
  }

  PluginRegistry& registry() {
    if (!registry_scanned_) {
      registry_.scan(PluginRegistry::search_path(plugin_paths_));
      registry_scanned_ = true;
      for (const auto& refused : registry_.refused()) host_logger().debug("skipped " + refused.reason);
      for (const auto& info : registry_.plugins()) {
        if (const auto warning = info.newer_sdk_warning()) host_logger().warning(*warning);
      }
    }
    return registry_;
  }

  /// Problems of the last load() or create() that failed, for validate --json.
  std::vector<std::string> problems_;

  /// Loads and validates the pipeline; on failure prints every problem and returns the exit code.
  std::optional<PipelineSpec> load(const std::string& path, int& failure_code) {
    bool plugin_problem = false;
    const SchemaLookup schemas = [&](const std::string& plugin, const std::string& kind) {
      SchemaLookupResult result;
      try {
        const PluginInfo& info = registry().resolve(plugin);
        if (std::string(etl::sdk::to_string(info.kind)) != kind) {
          result.error = "plugin '" + plugin + "' is a " + std::string(etl::sdk::to_string(info.kind)) +
                         " plugin, not a " + kind + " plugin";
          return result;
        }
        result.schema = &info.schema;
      } catch (const PluginLoadError& e) {
        plugin_problem = true;
        result.error = e.what();
      }
      return result;
    };
    try {
      // The schedule's window comes first: a scheduled run must report the window it was
      // started for, whatever the environment says.
      const VariableLookup variables = [this](const std::string& name) -> std::optional<std::string> {
        if (const auto found = host_variables_.find(name); found != host_variables_.end()) return found->second;
        return environment_variable(name);
      };
      return load_pipeline(path, overrides_, variables, schemas);
    } catch (const PipelineError& e) {
      problems_ = e.problems();
      // Stages whose config passed the schema are also handed to their plugins, so that a
      // plugin's own objection is found in the same pass, not after the others are fixed.
      if (e.partial()) {
        for (const StageSpec* stage : e.partial()->stages()) {
          if (!stage->schema_valid) continue;
          if (auto refusal = configure_problem(*e.partial(), *stage)) problems_.push_back(*refusal);
        }
      }
      for (const auto& problem : problems_) host_logger().error(problem);
      host_logger().error(path + ": " + std::to_string(problems_.size()) + " problem(s) found");
      failure_code = plugin_problem ? exit_code::plugin_error : exit_code::invalid_pipeline;
      return std::nullopt;
    }
  }

  /// What the plugin of `stage` says about its config when created, if it refuses it.
  std::optional<std::string> configure_problem(const PipelineSpec& spec, const StageSpec& stage) {
    const RunStop stop;
    try {
      create_stage(stage, registry(), stop);
    } catch (const StageError& e) {
      return spec.path + ": " + e.what();
    } catch (const std::exception&) {
      // Not loadable: already among the problems.
    }
    return std::nullopt;
  }

  std::optional<PipelinePlugins> create(const PipelineSpec& spec, int& failure_code, const RunStop& stop) {
    try {
      return create_plugins(spec, registry(), stop);
    } catch (const PluginLoadError& e) {
      problems_ = {e.what()};
      host_logger().error(e.what());
      failure_code = exit_code::plugin_error;
    } catch (const StageError& e) {
      problems_ = {spec.path + ": " + e.what()};
      host_logger().error(problems_.front());
      failure_code = exit_code::invalid_pipeline;
    }
    return std::nullopt;
  }

  /// validate --json: the verdict on stdout whatever it is, so scripts always get JSON.
  int invalid_json(const std::string& path, int failure_code) const {
    // Redacted like the log lines that say the same (URL credentials, known secrets).
    json problems = json::array();
    for (const auto& problem : problems_) problems.push_back(Redactor::instance().redact(problem));
    std::cout << json{{"pipeline", path}, {"valid", false}, {"exit_code", failure_code}, {"problems", problems}}
                     .dump(2, ' ', false, json::error_handler_t::replace)
              << "\n";
    return failure_code;
  }

  int validate_command(const ArgVec& args) {
    if (!expect_pipeline_argument(args, "validate")) return exit_code::usage;
    int failure = 0;
    auto spec = load(args.front(), failure);
    if (!spec) return json_ ? invalid_json(args.front(), failure) : failure;
    const RunStop stop;
    auto plugins = create(*spec, failure, stop);
    if (!plugins) return json_ ? invalid_json(args.front(), failure) : failure;
    if (const auto problem = state_problem(*spec, *plugins)) {
      problems_ = {*problem};
      host_logger().error(*problem);
      return json_ ? invalid_json(args.front(), exit_code::invalid_pipeline) : exit_code::invalid_pipeline;
    }
    if (json_) {
      json described = describe(*spec);
      described["valid"] = true;
      std::cout << described.dump(2) << "\n";
    } else {
      std::string reporters;
      for (const auto& r : spec->reporters) reporters += (reporters.empty() ? "" : ", ") + r.plugin;
      std::string transforms;
      for (const auto& t : spec->transforms) transforms += ", transform " + t.plugin;
      std::cout << spec->path << ": valid (source " << spec->source.plugin << transforms << ", sink "
                << spec->sink.plugin << ", reporters " << reporters << ")\n";
    }
    return exit_code::ok;
  }

  /// Settings with the state store's password replaced by ***.
  static json redacted_settings(json settings) {
    if (settings.contains("state") && settings["state"].contains("password")) settings["state"]["password"] = "***";
    return settings;
  }

  /// The resolved pipeline, secrets replaced by ***.
  json describe(const PipelineSpec& spec) {
    auto stage = [&](const StageSpec& s) {
      const PluginInfo& info = registry().resolve(s.plugin);
      json config = redact_secrets(info.schema, s.config);
      return json{{"plugin", s.plugin}, {"config", json::parse(Redactor::instance().redact(config.dump(-1, ' ', false, json::error_handler_t::replace)))}};
    };
    json reporters = json::array();
    for (const auto& r : spec.reporters) reporters.push_back(stage(r));
    json transforms = json::array();
    for (const auto& t : spec.transforms) transforms.push_back(stage(t));
    return json{{"name", spec.name},
                {"source", stage(spec.source)},
                {"transforms", transforms},
                {"sink", stage(spec.sink)},
                {"reporters", reporters},
                {"settings", redacted_settings(spec.settings)}};
  }

  int run_command(const ArgVec& args) {
    if (!expect_pipeline_argument(args, "run")) return exit_code::usage;
    install_signal_handlers();
    return run_once(args.front());
  }

  /// Why settings.state cannot work for this pipeline, if it cannot.
  static std::optional<std::string> state_problem(const PipelineSpec& spec, const PipelinePlugins& plugins) {
    const auto settings = spec.settings.find("state");
    if (settings == spec.settings.end()) return std::nullopt;
    if (dynamic_cast<const etl::sdk::Resumable*>(plugins.source.object.get()) == nullptr) {
      return spec.path + ": /settings/state: source '" + plugins.source.name +
             "' keeps no position between runs, so the pipeline cannot keep state; remove settings.state";
    }
    if (settings->value("store", std::string()) == "postgres") {
      for (const char* key : {"host", "user", "dbname"}) {
        if (!settings->contains(key)) {
          return spec.path + ": /settings/state: the postgres store needs \"" + key + "\"";
        }
      }
    }
    return std::nullopt;
  }

  /// A name for this run, unique on the machine: when it started, and the process.
  std::string new_run_id() {
    char text[32];
    const std::time_t now = std::time(nullptr);
    std::tm parts{};
    gmtime_r(&now, &parts);
    std::strftime(text, sizeof text, "%Y%m%dT%H%M%SZ", &parts);
    return std::string(text) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++runs_started_);
  }

  /// What the pipeline's source says of its input against `position` (sdk::DescribesPosition):
  /// a JSON object, {"error": why} when it could not ask, null when the source says nothing.
  json describe_input(const PipelineSpec& spec, const std::string& position) {
    RunStop stop(&g_signal_code);
    int failure = 0;
    auto plugins = create(spec, failure, stop);
    if (!plugins) return json{{"error", "the pipeline's plugins could not be configured (the log says why)"}};
    auto* describes = dynamic_cast<etl::sdk::DescribesPosition*>(plugins->source.object.get());
    if (describes == nullptr) return nullptr;
    try {
      const std::string text = call_plugin(plugins->source.name, "describe position",
                                           [&] { return describes->describe_position(position); });
      json facts = json::parse(text, nullptr, false);
      if (!facts.is_object()) return json{{"error", "source '" + plugins->source.name + "' described its input as " + text}};
      return facts;
    } catch (const std::exception& e) {
      return json{{"error", Redactor::instance().redact(e.what())}};
    }
  }

  /// `etl-host state show|reset PIPELINE`.
  int state_command(const ArgVec& args) {
    if (args.size() != 2 || (args[0] != "show" && args[0] != "reset")) {
      std::cerr << "etl-host state: expected `state show PIPELINE` or `state reset PIPELINE`\n";
      return exit_code::usage;
    }
    int failure = 0;
    host_variables_["ETL_RUN_ID"] = new_run_id();
    auto spec = load(args[1], failure);
    if (!spec) return failure;
    const auto settings = spec->settings.find("state");
    if (settings == spec->settings.end()) {
      std::cerr << "etl-host state: " << spec->path << " keeps no state (it has no settings.state)\n";
      return exit_code::invalid_pipeline;
    }
    try {
      if (const auto password = settings->find("password"); password != settings->end() && password->is_string()) {
        Redactor::instance().add(password->get<std::string>());
      }
      auto store = make_state_store(*settings, spec->name);
      if (args[0] == "reset") {
        store->acquire(host_variables_["ETL_RUN_ID"]);
        store->reset();
        store->release();
        std::cout << "pipeline " << spec->name << ": state forgotten (" << store->describe()
                  << "); the next run reads the source from its beginning\n";
        return exit_code::ok;
      }
      const auto saved = store->load();
      const json input = describe_input(*spec, saved ? saved->position : std::string());
      if (json_) {
        json shown = saved ? json::parse(saved->to_json_text()) : json{{"pipeline", spec->name}, {"position", nullptr}};
        if (!input.is_null()) shown["input"] = input;
        std::cout << shown.dump(2) << "\n";
        return exit_code::ok;
      }
      std::cout << "pipeline " << spec->name << " (" << store->describe() << ")\n";
      if (!saved) {
        std::cout << "  no position committed: the next run reads the source from its beginning\n";
      } else {
        std::cout << "  source     " << saved->source << "\n"
                  << "  position   " << saved->position << "\n"
                  << "  committed  " << saved->committed_at << " by run " << saved->run << " (" << saved->settled
                  << " records of that run settled up to it)\n";
      }
      if (!input.is_null()) {
        std::cout << "  input now (as " << spec->source.plugin << " sees it)\n";
        for (const auto& [name, value] : input.items()) {
          std::cout << "    " << name << std::string(name.size() < 20 ? 20 - name.size() : 1, ' ')
                    << (value.is_string() ? value.get<std::string>() : value.dump()) << "\n";
        }
      }
      return exit_code::ok;
    } catch (const StateError& e) {
      host_logger().error(Redactor::instance().redact(e.what()));
      return exit_code::state_failed;
    }
  }

  /// Loads, checks and runs the pipeline once; the run's exit code.
  int run_once(const std::string& path) {
    host_variables_["ETL_RUN_ID"] = new_run_id();
    int failure = 0;
    auto spec = load(path, failure);
    if (!spec) return failure;
    // One per run: an internal stop (error budget) ends this run only, never a schedule.
    RunStop stop(&g_signal_code);
    auto plugins = create(*spec, failure, stop);
    if (!plugins) return failure;
    if (const auto problem = state_problem(*spec, *plugins)) {
      host_logger().error(*problem);
      return exit_code::invalid_pipeline;
    }
    std::string stages = spec->source.plugin;
    for (const auto& transform : spec->transforms) stages += " -> " + transform.plugin;
    host_logger().information("running " + spec->path + ": " + stages + " -> " + spec->sink.plugin);
    // State: taken for this run (a second run of the pipeline is refused), the position loaded.
    std::unique_ptr<StateStore> store;
    StateRun state;
    if (const auto settings = spec->settings.find("state"); settings != spec->settings.end()) {
      try {
        if (const auto password = settings->find("password"); password != settings->end() && password->is_string()) {
          Redactor::instance().add(password->get<std::string>());
        }
        store = make_state_store(*settings, spec->name);
        store->acquire(host_variables_["ETL_RUN_ID"]);
        state.store = store.get();
        state.run_id = host_variables_["ETL_RUN_ID"];
        state.commit_interval = std::chrono::milliseconds(static_cast<long>(settings->value("commit_interval", 1.0) * 1000));
        state.commit_past_failed = settings->value("commit_past_failed", false);
        if (from_start_) {
          host_logger().information("state: --from-start: the committed position is ignored for this run");
        } else {
          state.resume = store->load();
        }
        if (state.resume && state.resume->source != plugins->source.name) {
          throw StateError(store->describe() + ": the position was committed by source '" + state.resume->source +
                           "', and this pipeline's source is '" + plugins->source.name +
                           "': `etl-host state reset " + spec->path + "` to start over");
        }
      } catch (const StateError& e) {
        host_logger().error(Redactor::instance().redact(e.what()));
        return exit_code::state_failed;
      }
    }
    const RunResult result = run_pipeline(*spec, *plugins, RunOptions{&stop, store ? &state : nullptr});
    if (store) store->release();
    if (!summary_json_.empty()) write_summary_json(*spec, result);
    std::string pushgateway = metrics_push_;
    if (const char* env = std::getenv("ETL_PUSHGATEWAY_URL"); pushgateway.empty() && env != nullptr) pushgateway = env;
    if (!pushgateway.empty()) {
      const std::string error = push_run_metrics(pushgateway, spec->name, result.summary, result.exit_code);
      if (!error.empty()) {
        host_logger().warning(error);
      } else {
        host_logger().debug("pushed run metrics to " + pushgateway);
      }
    }
    return result.exit_code;
  }

  int schedule_command(const ArgVec& args) {
    if (!expect_pipeline_argument(args, "schedule")) return exit_code::usage;
    if (every_.empty() == cron_.empty()) {
      std::cerr << "etl-host schedule: give exactly one of --every DURATION or --cron \"M H DOM MON DOW\"\n";
      return exit_code::usage;
    }
    std::optional<std::chrono::milliseconds> interval;
    std::optional<CronSchedule> cron;
    std::uint64_t max_runs = 0;
    try {
      if (!every_.empty()) interval = parse_duration(every_);
      if (!cron_.empty()) cron.emplace(cron_);
      if (!max_runs_.empty()) {
        max_runs = std::stoull(max_runs_);
        if (max_runs == 0 || max_runs_.find_first_not_of("0123456789") != std::string::npos) throw std::invalid_argument("");
      }
    } catch (const ScheduleError& e) {
      std::cerr << "etl-host schedule: " << e.what() << "\n";
      return exit_code::usage;
    } catch (const std::exception&) {
      std::cerr << "etl-host schedule: --max-runs " << max_runs_ << ": expected a whole number above 0\n";
      return exit_code::usage;
    }
    install_signal_handlers();
    Scheduler::Options options;
    options.interval = interval;
    options.cron = cron;
    options.local_time = std::getenv("TZ") != nullptr;
    options.max_runs = max_runs;
    const std::string described =
        interval ? "every " + every_ : "cron \"" + cron_ + "\"" + (options.local_time ? " (TZ)" : " (UTC)");
    host_logger().information("schedule: " + args.front() + " " + described +
                              (max_runs ? ", at most " + std::to_string(max_runs) + " run(s)" : std::string()));
    SystemScheduleClock clock;
    Scheduler scheduler(std::move(options), clock);
    return scheduler.loop(
        [&](const ScheduledRun& scheduled) {
          // The schedule's window comes first: a scheduled run must report the window it was
          // started for, whatever the environment says.
          host_variables_["ETL_WINDOW_START"] = utc_text(scheduled.window_start);
          host_variables_["ETL_WINDOW_END"] = utc_text(scheduled.window_end);
          return run_once(args.front());
        },
        [] { return g_signal_code.load() != 0; });
  }

  void write_summary_json(const PipelineSpec& spec, const RunResult& result) const {
    json summary = etl::sdk::summary_to_json(result.summary);
    summary["pipeline"] = spec.name;
    std::ofstream out(summary_json_);
    out << summary.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    if (!out) host_logger().error("--summary-json " + summary_json_ + ": cannot write the file");
  }

  int plugins_command(const ArgVec& args) {
    if (args.size() > 1) {
      std::cerr << "etl-host plugins: takes at most one argument, a plugin name\n";
      return exit_code::usage;
    }
    PluginRegistry& plugins = registry();
    if (args.size() == 1) {
      // One plugin's config keys as the Markdown table its README carries.
      try {
        const PluginInfo& info = plugins.resolve(args.front());
        std::cout << config_table_markdown(info.schema);
        return exit_code::ok;
      } catch (const std::exception& e) {
        std::cerr << "etl-host plugins: " << e.what() << "\n";
        return exit_code::plugin_error;
      }
    }
    for (const auto& conflict : plugins.conflicts()) host_logger().error(conflict);
    if (json_) {
      json list = json::array();
      for (const auto& info : plugins.plugins()) list.push_back(info.to_json());
      std::cout << list.dump(2) << "\n";
    } else {
      std::cout << std::left << std::setw(22) << "NAME" << std::setw(10) << "KIND" << std::setw(9)
                << "VERSION" << std::setw(5) << "ABI" << "DESCRIPTION / FILE\n";
      for (const auto& info : plugins.plugins()) {
        std::cout << std::left << std::setw(22) << info.name << std::setw(10)
                  << etl::sdk::to_string(info.kind) << std::setw(9) << info.version << std::setw(5)
                  << info.abi_version << info.description << "\n";
        if (!info.aliases.empty()) {
          std::string names;
          for (const auto& alias : info.aliases) names += (names.empty() ? "" : ", ") + alias;
          std::cout << std::setw(46) << "" << "also named: " << names << "\n";
        }
        std::cout << std::setw(46) << "" << info.file << "\n";
      }
    }
    for (const auto& refused : plugins.refused()) host_logger().warning("refused " + refused.reason);
    return plugins.conflicts().empty() ? exit_code::ok : exit_code::plugin_error;
  }

  int schema_command(const ArgVec& args) {
    if (!args.empty()) {
      std::cerr << "etl-host schema: takes no arguments\n";
      return exit_code::usage;
    }
    std::vector<PluginSchemaEntry> plugins;
    for (const auto& info : registry().plugins()) plugins.push_back({info.kind, info.name, info.aliases, info.schema});
    const json schema = editor_schema(plugins);
    std::cout << schema.dump(2) << "\n";
    return exit_code::ok;
  }

  bool from_start_ = false;
  std::uint64_t runs_started_ = 0;
  bool help_ = false;
  bool version_ = false;
  bool json_ = false;
  std::string log_level_;
  std::string metrics_push_;
  std::string every_;
  std::string cron_;
  std::string max_runs_;
  std::string summary_json_;
  std::vector<Override> overrides_;
  /// ETL_RUN_ID, and ETL_WINDOW_START and ETL_WINDOW_END of the scheduled run being loaded.
  std::map<std::string, std::string> host_variables_;
  std::vector<std::string> plugin_paths_;
  PluginRegistry registry_;
  bool registry_scanned_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Poco::AutoPtr<EtlHostApplication> application = new EtlHostApplication;
  try {
    application->init(argc, argv);
  } catch (const Poco::Exception& e) {
    std::cerr << "etl-host: " << e.displayText() << " (see etl-host --help)\n";
    return exit_code::usage;
  } catch (const std::exception& e) {
    std::cerr << "etl-host: " << e.what() << " (see etl-host --help)\n";
    return exit_code::usage;
  }
  return application->run();
}
