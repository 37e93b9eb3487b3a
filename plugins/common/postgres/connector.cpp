#include "postgres/connector.hpp"

#include <algorithm>
#include <chrono>
#include <future>

#include "etl/sdk/service.hpp"

namespace etl::plugins::postgres {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// In a service a reconnect waits at most this long: a database back after an outage is
/// noticed within seconds, and a failed attempt costs next to nothing.
constexpr double kServiceMaxDelay = 2.0;

}  // namespace

ConnectTarget ConnectTarget::from(const PgConnection& config, double answer_timeout_seconds) {
  ConnectTarget target;
  std::map<std::string, std::string> parameters = connection_parameters(config);
  target.conninfo = connection_string(parameters);
  // After a stop only a quick attempt is worth making (the stop must end within seconds). Its
  // statements are bounded too (a locked table must not hold the stop), through the startup
  // options, which a transaction pooler refuses: then connect_timeout alone bounds it.
  parameters["connect_timeout"] = "2";
  if (config.prepared_statements) parameters["options"] = "-c statement_timeout=2000";
  target.stop_conninfo = connection_string(parameters);
  target.where = describe(config);
  target.answer_timeout_ms = std::max(1L, static_cast<long>(answer_timeout_seconds * 1000));
  target.mode = std::make_shared<SessionMode>(config.prepared_statements);
  return target;
}

Deadlines ConnectTarget::deadlines(const sdk::Context& context) const {
  Deadlines out;
  out.answer_timeout_ms = answer_timeout_ms;
  out.stop_requested = [&context] { return context.stop_requested(); };
  return out;
}

Connector::Connector(ConnectTarget target, sdk::Context& context, const sdk::RetryPolicy& retry)
    : target_(std::move(target)), context_(context), retry_(retry), service_(sdk::is_service(context)) {
  if (service_) retry_.max_delay = std::min(retry_.max_delay, kServiceMaxDelay);
}

sdk::Backoff Connector::backoff() const { return sdk::Backoff(retry_, service_); }

PgSession Connector::open_once(const Prepare& prepare, bool for_stop) const {
  PgSession session = PgSession::open(for_stop ? target_.stop_conninfo : target_.conninfo, target_.where,
                                      target_.deadlines(context_), target_.mode);
  if (!for_stop && prepare) prepare(session);
  return session;
}

PgSession Connector::open(const Prepare& prepare, bool log) const {
  sdk::Backoff backoff = this->backoff();
  while (true) {
    try {
      return open_once(prepare);
    } catch (const ConnectionLost& e) {
      const auto delay = backoff.failed();
      if (!delay || context_.stop_requested()) {
        throw sdk::PluginError(std::string(e.what()) + " (database unreachable " + backoff.spent_text() + ")");
      }
      if (log) {
        context_.log(sdk::LogLevel::warning, std::string(e.what()) + "; retrying in " + sdk::seconds_text(*delay) + " (" +
                                                 backoff.progress_text() + ")");
      }
      if (!sdk::sleep_unless_stopped(context_, *delay)) {
        throw sdk::PluginError(std::string(e.what()) + " (the run was stopped while waiting to retry)");
      }
    }
  }
}

std::vector<PgSession> Connector::open_all(std::size_t count, const Prepare& prepare) const {
  std::vector<std::future<PgSession>> pending;
  for (std::size_t i = 0; i < count; ++i) {
    pending.push_back(std::async(std::launch::async, [this, &prepare, i] { return open(prepare, i == 0); }));
  }
  std::vector<PgSession> sessions;
  std::string first_failure;
  for (auto& session : pending) {
    try {
      sessions.push_back(session.get());
    } catch (const std::exception& e) {
      if (first_failure.empty()) first_failure = e.what();
    }
  }
  if (!first_failure.empty()) throw sdk::PluginError(first_failure);
  return sessions;
}

SinkState::SinkState(sdk::Context& context, std::string where, std::string what)
    : context_(context), where_(std::move(where)), what_(std::move(what)) {}

void SinkState::record(const std::string& message) {
  std::lock_guard lock(mutex_);
  if (first_error_.empty()) first_error_ = message;
}

std::string SinkState::first_error() const {
  std::lock_guard lock(mutex_);
  return first_error_;
}

void SinkState::declare_fatal(const std::string& message) {
  if (fatal_.exchange(true)) return;
  record(message + " (every " + what_ + " would meet this error; stopping)");
  context_.log(sdk::LogLevel::error, "PostgreSQL at " + where_ + ": " + first_error());
}

bool SinkState::stopping() const { return fatal_.load() || context_.stop_requested(); }

std::string SinkState::stop_reason() const { return fatal_.load() ? first_error() : std::string("the run was stopped"); }

void SinkState::connection_up(std::size_t index, std::size_t count) {
  std::size_t up = 0;
  bool changed = false;
  double outage = 0;
  {
    std::lock_guard lock(mutex_);
    if (up_by_connection_.size() != count) up_by_connection_.assign(count, false);
    if (up_by_connection_[index]) return;
    up_by_connection_[index] = true;
    up = static_cast<std::size_t>(std::count(up_by_connection_.begin(), up_by_connection_.end(), true));
    up_.store(up);
    if (!ready_) {
      ready_ = true;
      changed = true;
      outage = now_seconds() - down_since_;
    }
  }
  publish(up);
  if (!changed) return;
  context_.log(sdk::LogLevel::info, "PostgreSQL at " + where_ + " answers again after " + sdk::seconds_text(outage) +
                                        " unreachable; taking rows");
  if (auto* service = sdk::service_of(context_)) {
    service->set_ready(true, "");
    service->add_counter("etl_sink_outage_seconds_total", "Seconds the sink's database was unreachable.", outage);
  }
}

void SinkState::connection_down(std::size_t index, std::size_t count, const std::string& reason) {
  std::size_t up = 0;
  bool changed = false;
  {
    std::lock_guard lock(mutex_);
    if (up_by_connection_.size() != count) up_by_connection_.assign(count, false);
    up_by_connection_[index] = false;
    down_reason_ = reason;
    up = static_cast<std::size_t>(std::count(up_by_connection_.begin(), up_by_connection_.end(), true));
    up_.store(up);
    seen_down_.store(true);
    if (up == 0 && ready_) {
      ready_ = false;
      changed = true;
      down_since_ = now_seconds();
    }
  }
  publish(up);
  if (!changed) return;
  context_.log(sdk::LogLevel::warning, "PostgreSQL at " + where_ + " is unreachable (" + reason + "); " +
                                           (rows_wait_ ? "rows wait for it (when_unavailable: wait)"
                                                       : "rows are refused at once (failed, code unavailable) until it answers again"));
  if (auto* service = sdk::service_of(context_)) service->set_ready(false, "PostgreSQL at " + where_ + " unreachable: " + reason);
}

std::string SinkState::unreachable_reason() const {
  std::lock_guard lock(mutex_);
  return "PostgreSQL at " + where_ + " is unreachable: " + down_reason_;
}

void SinkState::publish(std::size_t up) {
  if (auto* service = sdk::service_of(context_)) {
    service->set_gauge("etl_sink_connections_up", "Connections of the sink to its database that are up.",
                       static_cast<double>(up));
  }
}

}  // namespace etl::plugins::postgres
