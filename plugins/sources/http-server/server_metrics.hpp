#pragma once
// The http-server source's own metrics, in Prometheus' text format: requests by route, method and
// status, a latency histogram per route, and the server's connection counts. Thread-safe.

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "event_server.hpp"

namespace etl::plugins::http_server {

class ServerMetrics {
 public:
  /// Upper bounds of the latency buckets, in seconds.
  static const std::vector<double>& buckets();

  void declare_route(const std::string& route);
  /// A request answered `status` (route "" for those no route took: 404, 405, health checks).
  void answered(const std::string& route, const std::string& method, int status,
                std::chrono::steady_clock::time_point started);
  [[nodiscard]] std::string text(const EventServer::Stats& server) const;

 private:
  struct Latency {
    std::vector<std::uint64_t> counts;  // per bucket, not cumulative
    std::uint64_t total = 0;
    double sum = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Latency> latency_;
};

}  // namespace etl::plugins::http_server
