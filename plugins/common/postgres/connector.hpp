#pragma once
// What the PostgreSQL sinks share around their sessions: where and how to connect (ConnectTarget),
// opening sessions under the one retry policy (Connector), and the sink's stop state
// (SinkState: the first error, an error every row would meet, the host's stop, and readiness in
// a service).

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "etl/sdk/plugin.hpp"
#include "etl/sdk/retry.hpp"
#include "postgres/connection.hpp"
#include "postgres/session.hpp"

namespace etl::plugins::postgres {

/// Where a sink connects: its conninfo, a quick one for deciding rows after a stop (connect and
/// statements bounded to 2 s, which a stop must not outlast), how it names the server in
/// messages, and whether named statements are used (shared by all its sessions).
struct ConnectTarget {
  std::string conninfo;
  std::string stop_conninfo;
  std::string where;  // host:port/dbname as user
  long answer_timeout_ms = 60000;
  std::shared_ptr<SessionMode> mode;

  static ConnectTarget from(const PgConnection& config, double answer_timeout_seconds);
  /// The deadlines of a session of this target, stopping with the host.
  [[nodiscard]] Deadlines deadlines(const sdk::Context& context) const;
};

/// Opens sessions of one target, retrying a server that cannot be reached under the sink's
/// retry policy: `retry.attempts` failures in a row in a batch run, without bound in a service
/// (only `retry.max_outage`), the wait capped at 2 s in a service so that it notices a server
/// that is back within seconds.
class Connector {
 public:
  /// Readies a new session (prepares statements, creates a staging table); may throw
  /// ConnectionLost (retried) or sdk::PluginError (not).
  using Prepare = std::function<void(PgSession&)>;

  Connector(ConnectTarget target, sdk::Context& context, const sdk::RetryPolicy& retry);

  [[nodiscard]] const ConnectTarget& target() const noexcept { return target_; }
  [[nodiscard]] bool service() const noexcept { return service_; }
  /// The retry policy for this sink's reconnects: service-capped waits (see the class comment).
  [[nodiscard]] sdk::Backoff backoff() const;

  /// One attempt; `for_stop` uses the quick conninfo and prepares nothing. Throws
  /// ConnectionLost or sdk::PluginError.
  [[nodiscard]] PgSession open_once(const Prepare& prepare, bool for_stop = false) const;
  /// Attempts until one succeeds; throws sdk::PluginError when the budget is spent ("...
  /// (database unreachable after 5 attempts)") or the run is stopped meanwhile. `log` says each
  /// retry on the log.
  [[nodiscard]] PgSession open(const Prepare& prepare, bool log) const;
  /// `count` sessions at once (a TLS handshake and SCRAM are several round trips each); throws
  /// the first failure.
  [[nodiscard]] std::vector<PgSession> open_all(std::size_t count, const Prepare& prepare) const;

 private:
  ConnectTarget target_;
  sdk::Context& context_;
  sdk::RetryPolicy retry_;
  bool service_;
};

/// A sink's shared state across its threads: the first error it met, whether every row would
/// meet it (fatal: the sink stops taking rows), the host's stop, and in a service whether the
/// database can be reached (readiness, published to the host once per change).
class SinkState {
 public:
  SinkState(sdk::Context& context, std::string where, std::string what);

  /// Keeps `message` unless an error was kept already.
  void record(const std::string& message);
  [[nodiscard]] std::string first_error() const;
  /// An error every row (or batch) would meet: recorded, logged once, and the sink stops.
  void declare_fatal(const std::string& message);
  [[nodiscard]] bool fatal() const noexcept { return fatal_.load(); }
  /// The sink takes no more rows: fatal, or the host asked to stop.
  [[nodiscard]] bool stopping() const;
  [[nodiscard]] std::string stop_reason() const;

  /// Service readiness: connection `index` of `count` is up or down. The sink is ready while
  /// any is up; each change of that is logged once and told to the host, and the gauges
  /// etl_sink_connections_up and etl_sink_outage_seconds_total follow.
  void connection_up(std::size_t index, std::size_t count);
  void connection_down(std::size_t index, std::size_t count, const std::string& reason);
  /// Rows wait through an outage rather than being refused (postgres-row-by-row's
  /// when_unavailable: wait): what the log says about an outage.
  void rows_wait_when_down() noexcept { rows_wait_ = true; }
  [[nodiscard]] bool reachable() const noexcept { return up_.load() > 0 || !seen_down_.load(); }
  /// Why the database is unreachable (the last error), for rows refused meanwhile.
  [[nodiscard]] std::string unreachable_reason() const;

 private:
  void publish(std::size_t up);

  sdk::Context& context_;
  std::string where_;
  std::string what_;  // "row" or "batch", for messages
  mutable std::mutex mutex_;
  std::string first_error_;
  std::string down_reason_;
  std::vector<bool> up_by_connection_;
  std::atomic<bool> fatal_{false};
  std::atomic<std::size_t> up_{0};
  std::atomic<bool> seen_down_{false};
  bool rows_wait_ = false;
  bool ready_ = true;
  double down_since_ = 0;
};

}  // namespace etl::plugins::postgres
