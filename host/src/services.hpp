#pragma once
// What the host offers the plugins of one pipeline beyond the Context (sdk::ServiceContext):
// whether it is a service, every stage's readiness, the metrics stages publish with the host's
// own, and the drain after a stop. One RunServices per pipeline run, shared by its contexts.

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace Poco {
class Logger;
}

namespace etl::host {

class RunServices {
 public:
  using Clock = std::chrono::steady_clock;

  /// What the host counts for its own metrics; a callback, since the ledger lives in the run.
  struct Counts {
    std::uint64_t received = 0, ok = 0, rejected = 0, failed = 0, dropped = 0, in_flight = 0;
    std::uint64_t rejected_at_source = 0, rejected_at_transform = 0, rejected_at_sink = 0;
  };

  explicit RunServices(std::string pipeline = {}, double drain_timeout = 10);

  void set_service(bool service) noexcept { service_ = service; }
  [[nodiscard]] bool service() const noexcept { return service_; }
  [[nodiscard]] const std::string& pipeline() const noexcept { return pipeline_; }

  /// A stage's readiness; each change of the pipeline's is logged once.
  void set_ready(const std::string& stage, bool ready, const std::string& reason);
  [[nodiscard]] bool ready(std::string* reason) const;

  void set_gauge(const std::string& stage, const std::string& name, const std::string& help, double value);
  void add_counter(const std::string& stage, const std::string& name, const std::string& help, double amount);
  /// The host's counts while a run goes on (reset with an empty function when it ends).
  void count_with(std::function<Counts()> counts);
  /// Prometheus text exposition (0.0.4) of the host's and the stages' metrics.
  [[nodiscard]] std::string metrics_text() const;

  /// The drain: seconds left after `stop_time` (the first moment a stop was seen).
  [[nodiscard]] double drain_seconds_left(std::optional<Clock::time_point> stop_time) const;
  [[nodiscard]] double drain_timeout() const noexcept { return drain_timeout_; }

 private:
  struct Metric {
    std::string help;
    bool counter = false;
    std::map<std::string, double> by_stage;  // plugin name -> value
  };

  std::string pipeline_;
  double drain_timeout_;
  bool service_ = false;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> not_ready_;  // stage, reason; in the order they turned
  std::map<std::string, Metric> metrics_;
  std::function<Counts()> counts_;
  Clock::time_point started_ = Clock::now();
};

/// `text` with the characters a Prometheus label value cannot hold as they are escaped.
std::string prometheus_label(const std::string& text);

}  // namespace etl::host
