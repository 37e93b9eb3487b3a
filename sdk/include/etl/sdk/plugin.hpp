// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// The plugin interfaces (source, sink, reporter), the context the host gives them, and the
/// descriptor every plugin library exports.
///
/// Lifecycle, driven by the host, never by the plugin:
///
///   create(args)  -- parse and check the config; no I/O (this is what `etl-host validate` runs)
///   open()        -- connect, open files
///   read()/write()/record() ... repeatedly
///   finish()      -- settle everything still in flight
///   destructor    -- release resources; must not throw
///
/// Threading: the host calls each plugin object from one thread at a time. A sink may use
/// threads of its own and deliver outcomes from them (OutcomeReceiver is thread-safe).
///
/// Errors: any plugin method except destructors may throw an exception derived from
/// std::exception (preferably etl::sdk::PluginError). The host catches it at the library
/// boundary and reports it with the plugin's name and the stage. Plugins never call exit(),
/// never write to stdout (reporters excepted) and log through Context::log().

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "etl/sdk/outcome.hpp"
#include "etl/sdk/record.hpp"
#include "etl/sdk/version.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// Thrown by plugins for errors the user can act on; the message should name the offending
/// input (config key, host, file) and must not contain secrets.
class ETL_SDK_API PluginError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown from a factory when the config is unusable beyond what the JSON Schema catches
/// (for example a URL that does not parse). `path` is a JSON pointer inside the config.
class ETL_SDK_API ConfigError : public PluginError {
 public:
  ConfigError(std::string path, const std::string& message)
      : PluginError(message), path_(std::move(path)) {}
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

enum class LogLevel : std::uint8_t { debug, info, warning, error };

/// Services the host offers every plugin object. Owned by the host; valid for the whole life
/// of the plugin object.
class ETL_SDK_API Context {
 public:
  virtual ~Context() = default;
  /// Logs a line on the host's log (stderr), tagged with the plugin's name. Secrets the host
  /// knows of are redacted, but plugins should not log them in the first place.
  virtual void log(LogLevel level, std::string_view message) noexcept = 0;
  /// True once the run should stop (a signal, or another stage failed). Long operations
  /// check it and return early; the host then settles what is in flight.
  [[nodiscard]] virtual bool stop_requested() const noexcept = 0;
  /// The name the plugin was loaded under.
  [[nodiscard]] virtual std::string_view plugin_name() const noexcept = 0;
};

/// What a factory receives.
struct PluginArgs {
  /// The plugin's config as a JSON object text: already checked against the plugin's schema,
  /// defaults filled in, variables interpolated.
  std::string_view config_json;
  Context& context;
};

/// Counts a source can report at the end of a run.
struct SourceStats {
  /// How many records the source asked for, when it knows (the token job's `size`).
  std::optional<std::uint64_t> requested;
  /// How many records it yielded.
  std::uint64_t received = 0;
};

class ETL_SDK_API Source {
 public:
  virtual ~Source() = default;
  /// Connects or opens the input.
  virtual void open() = 0;
  /// Names of the fields the records will carry (for report headers). May be called before open().
  [[nodiscard]] virtual std::vector<std::string> fields() const = 0;
  /// How many records the source expects to yield, if it knows; used for progress.
  [[nodiscard]] virtual std::optional<std::uint64_t> expected() const { return std::nullopt; }
  /// Appends at most `max_records` records to `batch`. Returns false when the source is
  /// exhausted (the batch may still have received records in that call). Blocks while
  /// waiting for data; returns early when Context::stop_requested() becomes true. When it
  /// throws, the records it had already appended are complete and are still processed.
  virtual bool read(Batch& batch, std::size_t max_records) = 0;
  /// Counts for the run summary; valid after read() returned false or the run stopped.
  [[nodiscard]] virtual SourceStats stats() const = 0;
};

/// Receives each record's outcome from a sink. Thread-safe.
class ETL_SDK_API OutcomeReceiver {
 public:
  virtual ~OutcomeReceiver() = default;
  /// Delivers the outcome of the record with the given sequence number. Exactly once per
  /// record handed to Sink::write(); outcomes may arrive in any order.
  virtual void deliver(std::uint64_t sequence, Outcome outcome) noexcept = 0;
};

class ETL_SDK_API Sink {
 public:
  virtual ~Sink() = default;
  /// Connects. Throws when the destination cannot be reached.
  virtual void open(OutcomeReceiver& outcomes) = 0;
  /// Hands records to the sink. The span is valid only during the call: a sink that writes
  /// asynchronously copies what it needs. May block to bound the records in flight
  /// (backpressure). Outcomes go to the receiver given to open(), now or later.
  virtual void write(std::span<const Record> records) = 0;
  /// Blocks until every record given to write() has had its outcome delivered.
  virtual void finish() = 0;
};

/// Facts about the run, given to reporters before the first record.
struct RunInfo {
  std::string pipeline;            ///< path of the pipeline file as given
  std::string source_plugin;
  std::string sink_plugin;
  std::vector<std::string> fields; ///< field names the source declared
};

/// The run's totals, given to reporters once at the end.
struct Summary {
  std::optional<std::uint64_t> requested;  ///< asked of the source, when known
  std::uint64_t received = 0;
  std::uint64_t ok = 0;
  std::uint64_t rejected = 0;
  std::uint64_t failed = 0;
  double seconds = 0;
  double rows_per_second = 0;
  /// True when the pipeline ran to its end; false when a stage failed or the run was stopped.
  bool completed = true;
  /// Why the run ended early, or empty.
  std::string stop_reason;
  int exit_code = 0;
  /// Of `failed`, the rows whose commit outcome could not be decided (they may be in the
  /// table; see Outcome::commit_unknown). Appended in SDK 0.2: plugins built against 0.1
  /// read the fields above unchanged.
  std::uint64_t commit_unknown = 0;
};

class ETL_SDK_API Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void open(const RunInfo& run) = 0;
  /// One call per record outcome, in the order outcomes arrive (not necessarily source order).
  virtual void record(const Record& record, const Outcome& outcome) = 0;
  /// Writes the summary, flushes and closes the output. Called even when the run failed.
  virtual void finish(const Summary& summary) = 0;
};

enum class PluginKind : std::uint32_t { source = 1, sink = 2, reporter = 3 };

constexpr std::string_view to_string(PluginKind kind) noexcept {
  switch (kind) {
    case PluginKind::source: return "source";
    case PluginKind::sink: return "sink";
    case PluginKind::reporter: return "reporter";
  }
  return "unknown";
}

/// Every plugin library exports exactly one descriptor (see ETL_PLUGIN_DESCRIPTOR).
///
/// The first three members form a header whose layout never changes across ABI versions, so
/// the host can read them from a plugin built for any SDK and refuse a mismatch before it
/// touches anything else.
struct PluginDescriptor {
  std::uint32_t magic;        ///< kDescriptorMagic
  std::uint32_t abi_version;  ///< kAbiVersion the plugin was built with
  const char* name;           ///< unique plugin name, e.g. "http-newline"
  // ---- the rest is specific to ABI version 1 ----
  PluginKind kind;
  const char* version;        ///< the plugin's own version, e.g. "1.0.0"
  const char* description;    ///< one line
  const char* config_schema;  ///< JSON Schema (draft 2020-12 subset) of the config object
  /// Exactly one of these is set, matching `kind`. They parse the config and may throw
  /// ConfigError; they must not do I/O.
  std::unique_ptr<Source> (*create_source)(const PluginArgs&);
  std::unique_ptr<Sink> (*create_sink)(const PluginArgs&);
  std::unique_ptr<Reporter> (*create_reporter)(const PluginArgs&);
};

inline constexpr std::uint32_t kDescriptorMagic = 0x45544c50;  // "ETLP"

/// Name of the exported symbol that points at the descriptor.
inline constexpr const char* kDescriptorSymbol = "etl_plugin_descriptor";

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk

#define ETL_SDK_ABI_SECTION_PASTE(v) "etl_abi_v" #v
#define ETL_SDK_ABI_SECTION_NAME(v) ETL_SDK_ABI_SECTION_PASTE(v)
/// Name of the ELF section that carries the ABI version in its name ("etl_abi_v1"). Section
/// names survive `strip`, and the host reads them from the file before loading it, so a plugin
/// built for another ABI is refused before any of its code (static initializers included) runs.
#define ETL_SDK_ABI_SECTION ETL_SDK_ABI_SECTION_NAME(ETL_SDK_ABI_VERSION)

/// Exports `descriptor` (a PluginDescriptor with static storage) from a plugin library under
/// the name the host looks for, and marks the library with its SDK ABI version. Use it once
/// per library, at namespace scope.
#define ETL_PLUGIN_DESCRIPTOR(descriptor)                                                    \
  extern "C" __attribute__((used, section(ETL_SDK_ABI_SECTION))) const char                \
      etl_plugin_abi_marker[] = "etl-host plugin, SDK " ETL_SDK_VERSION_STRING;              \
  extern "C" __attribute__((visibility("default"))) const ::etl::sdk::PluginDescriptor*    \
      etl_plugin_descriptor;                                                                 \
  const ::etl::sdk::PluginDescriptor* etl_plugin_descriptor = &(descriptor)
