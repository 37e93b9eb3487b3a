#pragma once

namespace etl::host::exit_code {
// Documented in README.md ("Exit codes"); scripts and schedulers depend on them.
inline constexpr int ok = 0;               ///< the pipeline ran to the end (rejected rows are normal)
inline constexpr int internal_error = 1;   ///< a bug in etl-host
inline constexpr int usage = 2;            ///< bad command line
inline constexpr int invalid_pipeline = 3; ///< pipeline file or plugin config is invalid
inline constexpr int plugin_error = 4;     ///< a plugin could not be found or loaded
inline constexpr int source_failed = 5;    ///< the source failed; records received were settled
inline constexpr int sink_failed = 6;      ///< the sink failed; unwritten records reported failed
inline constexpr int reporter_failed = 7;  ///< a report could not be written
inline constexpr int error_budget = 8;     ///< more records were rejected than settings.max_rejected allows
inline constexpr int killed_by_second_signal = 9;  ///< a second SIGINT/SIGTERM: exited at once, reports left .partial
inline constexpr int transform_failed = 10;  ///< a transform threw; records not yet past it reported failed
inline constexpr int state_failed = 11;  ///< the state store (settings.state) cannot be used, or another run holds it
inline constexpr int interrupted = 130;    ///< stopped by SIGINT (128 + 2)
inline constexpr int terminated = 143;     ///< stopped by SIGTERM (128 + 15)

/// Every code with its short meaning, in order: what `etl-host --help` prints (a test holds it
/// equal to the constants above and to the README's table).
struct Described {
  int code;
  const char* meaning;
};
inline constexpr Described kAll[] = {
    {ok, "ok"},
    {internal_error, "internal error"},
    {usage, "usage"},
    {invalid_pipeline, "invalid pipeline"},
    {plugin_error, "plugin not loadable"},
    {source_failed, "source failed"},
    {sink_failed, "sink failed"},
    {reporter_failed, "report failed"},
    {error_budget, "error budget exceeded"},
    {killed_by_second_signal, "second signal"},
    {transform_failed, "transform failed"},
    {state_failed, "state failed"},
    {interrupted, "SIGINT"},
    {terminated, "SIGTERM"},
};
}  // namespace etl::host::exit_code
