// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// The plugin interfaces (source, transform, sink, reporter), the context the host gives them, and the
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
/// Threading: the host calls each plugin object from one thread at a time, with one exception
/// stated at Source::acknowledge(). A sink may use threads of its own and deliver outcomes from
/// them (OutcomeReceiver is thread-safe). Reporters are called from one reporter thread.
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

/// Whether `object` (a struct with a leading `size` member, filled in by whoever made it) has
/// `member`. Structs the host hands to plugins only ever grow at their end within one ABI
/// version; a plugin that reads a member added after its own SDK release asks this first.
template <class Struct, class Member>
[[nodiscard]] bool has_member(const Struct& object, Member Struct::*member) noexcept {
  const auto* base = reinterpret_cast<const char*>(&object);
  const auto* end = reinterpret_cast<const char*>(&(object.*member)) + sizeof(Member);
  return static_cast<std::size_t>(end - base) <= object.size;
}

/// Counts a source can report at the end of a run.
struct SourceStats {
  std::uint32_t size = sizeof(SourceStats);  ///< see has_member()
  /// How many records the source asked for, when it knows (the token job's `size`).
  std::optional<std::uint64_t> requested;
  /// How many records it yielded (refused input included).
  std::uint64_t received = 0;
};

class ETL_SDK_API Source {
 public:
  virtual ~Source() = default;
  /// Connects or opens the input. A source that learns its fields from the input (a CSV
  /// header) reads them here.
  virtual void open() = 0;
  /// Names of the fields the records will carry, for report headers. Called after open().
  [[nodiscard]] virtual std::vector<std::string> fields() const = 0;
  /// How many records the source expects to yield, if it knows; used for progress.
  [[nodiscard]] virtual std::optional<std::uint64_t> expected() const { return std::nullopt; }
  /// Appends at most `max_records` records to `batch`, refused input among them
  /// (Record::refuse_input), in input order. Returns false when the source is exhausted (the
  /// batch may still have received records in that call). Blocks while waiting for data;
  /// returns early when Context::stop_requested() becomes true. When it throws, the records it
  /// had already appended are complete and are still processed.
  virtual bool read(Batch& batch, std::size_t max_records) = 0;
  /// Counts for the run summary; valid after read() returned false or the run stopped.
  [[nodiscard]] virtual SourceStats stats() const = 0;

  /// True when the source wants acknowledge() calls (to mark rows sent, commit an offset,
  /// answer a request). Asked once, after open().
  [[nodiscard]] virtual bool wants_acknowledgements() const { return false; }
  /// The final outcome of a record this source yielded, identified by its sequence number:
  /// the n-th record read() yielded over the run (refused input included) is number n.
  ///
  /// - Exactly once per record read() yielded, refused input included, when that record's
  ///   outcome is final (a record a transform split into several: once, when all of them are
  ///   settled, with the worst status among them: failed over rejected over ok).
  /// - In the order outcomes become final, which is not source order when the sink works in
  ///   parallel.
  /// - From the host's reporter thread: concurrently with read() (synchronise what the two
  ///   share), but never concurrently with another acknowledge().
  /// - Before the run's end: every record yielded is acknowledged before the host closes the
  ///   reports, the last acknowledgements after read() returned false or the run stopped.
  /// It must not throw (the host logs an exception and stops sending acknowledgements).
  virtual void acknowledge(std::uint64_t sequence, const Outcome& outcome) {
    (void)sequence;
    (void)outcome;
  }
};

/// A source that also derives from DrainsOnStop is read on after a stop (a signal, max_rejected,
/// a failed stage) until read() returns false, and the records it yields then are processed as
/// usual: a server answering the requests it had accepted before it stopped accepting. Its read()
/// must still end soon after Context::stop_requested() turns true (http-server: within its
/// drain_timeout); a second signal ends the run at once. Other sources are not read after a stop,
/// and records a read returns once the stop has come are reported failed, not attempted.
/// Since SDK 1.2 (a host before 1.2 treats such a source like any other).
class ETL_SDK_API DrainsOnStop {
 public:
  virtual ~DrainsOnStop() = default;
};

/// A source that also derives from Resumable keeps its place across runs when the pipeline keeps
/// state (`settings.state`). Since SDK 2.1 (a host before 2.1 never calls these).
///
/// A position is a small JSON text of the source's own making (a byte offset and line, a cursor's
/// values, an LSN). The host commits a position only when every record yielded before it has its
/// final outcome, whatever order the sink settles in, and gives the last committed one back to
/// resume_from() at the next run: records after it are read again (at-least-once; a keyed sink
/// makes that exactly-once in effect).
class ETL_SDK_API Resumable {
 public:
  virtual ~Resumable() = default;
  /// Called once, before open(): the position committed last (a text position() returned), or
  /// empty when the run starts from the beginning (no state yet, `etl-host state reset`,
  /// `run --from-start`). open() then goes on after it. Throws PluginError when the input no
  /// longer matches the position (a file replaced by another), naming what changed.
  virtual void resume_from(std::string_view position) = 0;
  /// Where the input stands after every record read() has yielded so far: resuming from it yields
  /// the next record. Called on the reading thread right after each read(); empty while there is
  /// no position (nothing read yet, or an input that cannot be resumed, such as stdin).
  [[nodiscard]] virtual std::string position() const = 0;
  /// `position` is committed: every record before it is settled and the state store holds it.
  /// A source that can let go of what lies behind it (a replication slot, a queue's offset) does
  /// it here. From the reporter thread, concurrently with read(); must not throw.
  virtual void committed(std::string_view position) noexcept { (void)position; }
};

/// A Resumable source that can tell how far its input has gone past a position also derives
/// from DescribesPosition: `etl-host state show` gives it the committed position and shows what
/// it answers (a replication slot's confirmed LSN against the server's WAL end, the bytes a
/// file has beyond the offset). Called after configure() on a source that is never opened; may
/// connect to its input. Since SDK 2.2 (a host before 2.2 never calls it).
class ETL_SDK_API DescribesPosition {
 public:
  virtual ~DescribesPosition() = default;
  /// A JSON object of facts, in the order to show them, e.g. {"slot": "etl_items",
  /// "confirmed_lsn": "0/1A2B3C", "server_lsn": "0/1A2F00", "lag_bytes": 17348}; `position` is
  /// what the store holds (empty: nothing committed). Throws PluginError when the input cannot
  /// be asked (its message is shown in place of the facts).
  [[nodiscard]] virtual std::string describe_position(std::string_view position) = 0;
};

/// A reporter that buffers its output also derives from FlushesReports: flush() makes what it was
/// given so far durable (written, and synced to disk when it is a file). The host calls it before
/// it commits a position, so a record behind a committed position is in the report even when the
/// process is killed next. From the reporter thread, between record() calls. Since SDK 2.1.
class ETL_SDK_API FlushesReports {
 public:
  virtual ~FlushesReports() = default;
  virtual void flush() = 0;
};

/// What a transform decided for one record.
struct TransformResult {
  enum class Verdict : std::uint8_t {
    /// The record (changed or not) goes on to the next stage.
    keep,
    /// The record ends here (a filter): status ok at stage transform, which reports and the
    /// summary call "dropped" (Outcome::is_dropped()); `code` (default "dropped") and `message`
    /// say why.
    drop,
    /// The record is refused: reported `rejected` at stage `transform` with `code`, `message`.
    refuse,
  };
  Verdict verdict = Verdict::keep;
  std::string code;
  std::string message;

  static TransformResult keep() { return {}; }
  static TransformResult drop(std::string code = "dropped", std::string message = {}) {
    return {Verdict::drop, std::move(code), std::move(message)};
  }
  static TransformResult refuse(std::string code, std::string message) {
    return {Verdict::refuse, std::move(code), std::move(message)};
  }
};

/// A stage between the source and the sink ("transforms": [...] in the pipeline, in order).
class ETL_SDK_API Transform {
 public:
  virtual ~Transform() = default;
  /// Opens what the transform needs (a lookup connection); most need nothing.
  virtual void open() {}
  /// Changes `record` in place and says whether it goes on. Records appended to `extra` go on
  /// after it as records of their own (fan-out), numbered from kFirstAddedSequence, `origin` kept;
  /// the source is acknowledged once for the original. Records arrive in source order, one
  /// call at a time. Throwing fails the run (the record is reported failed): refuse bad
  /// records instead.
  virtual TransformResult apply(Record& record, Batch& extra) = 0;
};

/// Receives each record's outcome from a sink. Thread-safe.
class ETL_SDK_API OutcomeReceiver {
 public:
  virtual ~OutcomeReceiver() = default;
  /// Delivers the outcome of the record with the given sequence number. Exactly once per
  /// record handed to Sink::write(); outcomes may arrive in any order. Cheap: the host only
  /// queues it (reporters run on a thread of their own).
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
  std::uint32_t size = sizeof(RunInfo);  ///< see has_member()
  std::string pipeline;                  ///< path of the pipeline file as given
  std::string source_plugin;
  std::vector<std::string> transform_plugins;  ///< in pipeline order
  std::string sink_plugin;
  std::vector<std::string> fields;  ///< field names the source declared
};

/// The run's totals, given to reporters once at the end.
struct Summary {
  std::uint32_t size = sizeof(Summary);  ///< see has_member()
  std::optional<std::uint64_t> requested;  ///< asked of the source, when known
  /// Records the source yielded, refused input included.
  std::uint64_t received = 0;
  std::uint64_t ok = 0;
  std::uint64_t rejected = 0;
  std::uint64_t failed = 0;
  /// Of `rejected`, by stage: refused input, refused by a transform, refused by the sink.
  std::uint64_t rejected_at_source = 0;
  std::uint64_t rejected_at_transform = 0;
  std::uint64_t rejected_at_sink = 0;
  /// Of `failed`, the rows whose commit outcome could not be decided (they may be in the
  /// table; see Outcome::commit_unknown).
  std::uint64_t commit_unknown = 0;
  double seconds = 0;
  double rows_per_second = 0;
  /// True when the pipeline ran to its end; false when a stage failed or the run was stopped.
  bool completed = true;
  /// Why the run ended early, or empty.
  std::string stop_reason;
  int exit_code = 0;
  /// Records a transform dropped (a filter): not in `ok`, which counts records that reached
  /// their end. received = ok + dropped + rejected + failed (once the run settled everything).
  /// Since SDK 2.2: has_member(summary, &Summary::dropped) before reading it.
  std::uint64_t dropped = 0;
};

class ETL_SDK_API Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void open(const RunInfo& run) = 0;
  /// One call per record outcome, in the order outcomes arrive (not necessarily source order),
  /// from the host's reporter thread, never concurrently with another call.
  virtual void record(const Record& record, const Outcome& outcome) = 0;
  /// Writes the summary, flushes and closes the output. Called even when the run failed.
  virtual void finish(const Summary& summary) = 0;
};

enum class PluginKind : std::uint32_t { source = 1, sink = 2, reporter = 3, transform = 4 };

constexpr std::string_view to_string(PluginKind kind) noexcept {
  switch (kind) {
    case PluginKind::source: return "source";
    case PluginKind::sink: return "sink";
    case PluginKind::reporter: return "reporter";
    case PluginKind::transform: return "transform";
  }
  return "unknown";
}

/// Every plugin library exports exactly one descriptor (see ETL_PLUGIN in etl/sdk/config.hpp,
/// which fills it in).
///
/// The first three members form a header whose layout never changes across ABI versions, so
/// the host can read them from a plugin built for any SDK and refuse a mismatch before it
/// touches anything else.
struct PluginDescriptor {
  std::uint32_t magic;        ///< kDescriptorMagic
  std::uint32_t abi_version;  ///< kAbiVersion the plugin was built with
  const char* name;           ///< unique plugin name, e.g. "http-newline"
  // ---- the rest is specific to ABI version 2 ----
  std::uint32_t size;         ///< sizeof(PluginDescriptor) in the plugin's SDK
  PluginKind kind;
  const char* sdk_version;    ///< ETL_SDK_VERSION_STRING the plugin was built with
  const char* version;        ///< the plugin's own version, e.g. "1.0.0"
  const char* description;    ///< one line
  const char* config_schema;  ///< JSON Schema (draft 2020-12 subset) of the config object
  /// Exactly one of these is set, matching `kind`. They parse the config and may throw
  /// ConfigError; they must not do I/O.
  std::unique_ptr<Source> (*create_source)(const PluginArgs&);
  std::unique_ptr<Sink> (*create_sink)(const PluginArgs&);
  std::unique_ptr<Reporter> (*create_reporter)(const PluginArgs&);
  std::unique_ptr<Transform> (*create_transform)(const PluginArgs&);
};

inline constexpr std::uint32_t kDescriptorMagic = 0x45544c50;  // "ETLP"

/// Name of the exported symbol that points at the descriptor.
inline constexpr const char* kDescriptorSymbol = "etl_plugin_descriptor";
/// Optional (SDK 1.1): a null-terminated array of other names for the plugin; see ETL_PLUGIN_ALIASES.
inline constexpr const char* kAliasesSymbol = "etl_plugin_aliases";

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk

#define ETL_SDK_ABI_SECTION_PASTE(v) "etl_abi_v" #v
#define ETL_SDK_ABI_SECTION_NAME(v) ETL_SDK_ABI_SECTION_PASTE(v)
/// Name of the ELF section that carries the ABI version in its name ("etl_abi_v2"). Section
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

/// Other names the host accepts for the plugin in a pipeline (since SDK 1.1; hosts before it
/// ignore them): ETL_PLUGIN_ALIASES("postgres") in the file that has ETL_PLUGIN. At most 16;
/// a name another plugin has is a conflict the host reports, like two plugins of one name.
#define ETL_PLUGIN_ALIASES(...)                                                              \
  extern "C" __attribute__((visibility("default"))) const char* const etl_plugin_aliases[]; \
  const char* const etl_plugin_aliases[] = {__VA_ARGS__, nullptr}
