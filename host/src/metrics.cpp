#include "metrics.hpp"

#include <chrono>
#include <memory>

#include <Poco/Exception.h>
#include <Poco/URI.h>
#include <prometheus/gateway.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace etl::host {

std::string push_run_metrics(const std::string& url, const std::string& pipeline, const sdk::Summary& summary,
                             int exit_code) {
  Poco::URI uri;
  try {
    uri = Poco::URI(url);
  } catch (const Poco::Exception& e) {
    return "--metrics-push " + url + ": not a URL: " + e.message();
  }
  if (uri.getScheme() != "http" || uri.getHost().empty()) {
    return "--metrics-push " + url + ": expected http://HOST:PORT";
  }
  auto registry = std::make_shared<prometheus::Registry>();
  auto gauge = [&](const std::string& name, const std::string& help) -> prometheus::Family<prometheus::Gauge>& {
    return prometheus::BuildGauge().Name(name).Help(help).Register(*registry);
  };
  auto& records = gauge("etl_records", "Records of the last run, by outcome");
  records.Add({{"status", "ok"}}).Set(static_cast<double>(summary.ok));
  records.Add({{"status", "dropped"}}).Set(static_cast<double>(summary.dropped));
  records.Add({{"status", "rejected"}}).Set(static_cast<double>(summary.rejected));
  records.Add({{"status", "failed"}}).Set(static_cast<double>(summary.failed));
  gauge("etl_records_received", "Records the source yielded in the last run").Add({}).Set(static_cast<double>(summary.received));
  if (summary.requested) {
    gauge("etl_records_requested", "Records the source asked for in the last run").Add({}).Set(static_cast<double>(*summary.requested));
  }
  gauge("etl_run_duration_seconds", "Duration of the last run").Add({}).Set(summary.seconds);
  gauge("etl_run_rows_per_second", "Records settled per second in the last run").Add({}).Set(summary.rows_per_second);
  gauge("etl_run_exit_code", "Exit code of the last run (0: ran to the end)").Add({}).Set(exit_code);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  gauge("etl_last_run_timestamp_seconds", "When the last run ended").Add({}).Set(now);
  const bool success = exit_code == 0;
  if (success) {
    gauge("etl_last_success_timestamp_seconds", "When the last successful run ended").Add({}).Set(now);
  }
  try {
    prometheus::Gateway gateway(uri.getHost(), std::to_string(uri.getPort()), "etl-host", {{"pipeline", pipeline}});
    gateway.RegisterCollectable(registry);
    // prometheus-cpp 1.0 names these the other way round from the Pushgateway: PushAdd() sends a
    // PUT (replace the group), Push() a POST (replace only the metrics sent). The metrics test
    // pins this down.
    const int status = success ? gateway.PushAdd() : gateway.Push();
    if (status < 200 || status > 299) {
      return "pushing metrics to " + url + " failed: HTTP " + std::to_string(status);
    }
  } catch (const std::exception& e) {
    return "pushing metrics to " + url + " failed: " + e.what();
  }
  return {};
}

}  // namespace etl::host
