#include "services.hpp"

#include <Poco/Logger.h>

#include <algorithm>
#include <cstdio>

#include "logging.hpp"

namespace etl::host {

namespace {

std::string number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

}  // namespace

std::string prometheus_label(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

RunServices::RunServices(std::string pipeline, double drain_timeout)
    : pipeline_(std::move(pipeline)), drain_timeout_(drain_timeout) {}

void RunServices::set_ready(const std::string& stage, bool ready, const std::string& reason) {
  std::string said;
  {
    std::lock_guard lock(mutex_);
    const bool was_ready = not_ready_.empty();
    const auto found = std::find_if(not_ready_.begin(), not_ready_.end(), [&](const auto& entry) { return entry.first == stage; });
    if (ready) {
      if (found == not_ready_.end()) return;
      not_ready_.erase(found);
    } else if (found != not_ready_.end()) {
      found->second = reason;
      return;
    } else {
      not_ready_.emplace_back(stage, reason);
    }
    const bool now_ready = not_ready_.empty();
    if (was_ready && !now_ready) said = "not ready: " + reason;
    if (!was_ready && now_ready) said = "ready again";
  }
  if (!said.empty()) host_logger().information("service: " + Redactor::instance().redact(said));
}

bool RunServices::ready(std::string* reason) const {
  std::lock_guard lock(mutex_);
  if (not_ready_.empty()) return true;
  if (reason != nullptr) *reason = not_ready_.front().second;
  return false;
}

void RunServices::set_gauge(const std::string& stage, const std::string& name, const std::string& help, double value) {
  std::lock_guard lock(mutex_);
  Metric& metric = metrics_[name];
  metric.help = help;
  metric.by_stage[stage] = value;
}

void RunServices::add_counter(const std::string& stage, const std::string& name, const std::string& help, double amount) {
  std::lock_guard lock(mutex_);
  Metric& metric = metrics_[name];
  metric.help = help;
  metric.counter = true;
  metric.by_stage[stage] += amount;
}

void RunServices::count_with(std::function<Counts()> counts) {
  std::lock_guard lock(mutex_);
  counts_ = std::move(counts);
}

std::string RunServices::metrics_text() const {
  std::lock_guard lock(mutex_);
  const std::string pipeline = "pipeline=\"" + prometheus_label(pipeline_) + "\"";
  std::string out;
  auto family = [&](const std::string& name, const char* type, const std::string& help) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  const Counts counts = counts_ ? counts_() : Counts{};
  family("etl_records_received_total", "counter", "Records the source yielded, refused input included.");
  out += "etl_records_received_total{" + pipeline + "} " + std::to_string(counts.received) + "\n";
  family("etl_records_total", "counter", "Records by final outcome (dropped: a transform filtered them out).");
  out += "etl_records_total{" + pipeline + ",status=\"ok\"} " + std::to_string(counts.ok) + "\n";
  out += "etl_records_total{" + pipeline + ",status=\"rejected\"} " + std::to_string(counts.rejected) + "\n";
  out += "etl_records_total{" + pipeline + ",status=\"failed\"} " + std::to_string(counts.failed) + "\n";
  out += "etl_records_total{" + pipeline + ",status=\"dropped\"} " + std::to_string(counts.dropped) + "\n";
  family("etl_records_rejected_total", "counter", "Rejected records by the stage that refused them.");
  out += "etl_records_rejected_total{" + pipeline + ",stage=\"source\"} " + std::to_string(counts.rejected_at_source) + "\n";
  out += "etl_records_rejected_total{" + pipeline + ",stage=\"transform\"} " + std::to_string(counts.rejected_at_transform) + "\n";
  out += "etl_records_rejected_total{" + pipeline + ",stage=\"sink\"} " + std::to_string(counts.rejected_at_sink) + "\n";
  family("etl_records_in_flight", "gauge", "Records handed to the sink and not yet settled.");
  out += "etl_records_in_flight{" + pipeline + "} " + std::to_string(counts.in_flight) + "\n";
  family("etl_ready", "gauge", "1 while every stage can do its work (the service's readiness).");
  out += "etl_ready{" + pipeline + "} " + (not_ready_.empty() ? "1" : "0") + "\n";
  family("etl_uptime_seconds", "gauge", "Seconds since the run started.");
  out += "etl_uptime_seconds{" + pipeline + "} " +
         number(std::chrono::duration<double>(Clock::now() - started_).count()) + "\n";
  for (const auto& [name, metric] : metrics_) {
    family(name, metric.counter ? "counter" : "gauge", metric.help);
    for (const auto& [stage, value] : metric.by_stage) {
      out += name + "{" + pipeline + ",plugin=\"" + prometheus_label(stage) + "\"} " + number(value) + "\n";
    }
  }
  return out;
}

double RunServices::drain_seconds_left(std::optional<Clock::time_point> stop_time) const {
  if (!stop_time) return drain_timeout_;
  const double spent = std::chrono::duration<double>(Clock::now() - *stop_time).count();
  return std::max(0.0, drain_timeout_ - spent);
}

}  // namespace etl::host
