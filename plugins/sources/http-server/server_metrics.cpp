#include "server_metrics.hpp"

#include <cstdio>

namespace etl::plugins::http_server {

namespace {

std::string label(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.9g", value);
  return text;
}

}  // namespace

const std::vector<double>& ServerMetrics::buckets() {
  static const std::vector<double> bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return bounds;
}

void ServerMetrics::declare_route(const std::string& route) {
  std::lock_guard lock(mutex_);
  latency_[route].counts.resize(buckets().size(), 0);
}

void ServerMetrics::answered(const std::string& route, const std::string& method, int status,
                             std::chrono::steady_clock::time_point started) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::lock_guard lock(mutex_);
  ++requests_[{route, method, status}];
  if (route.empty()) return;
  Latency& latency = latency_[route];
  latency.counts.resize(buckets().size(), 0);
  for (std::size_t i = 0; i < buckets().size(); ++i) {
    if (seconds <= buckets()[i]) {
      ++latency.counts[i];
      break;
    }
  }
  ++latency.total;
  latency.sum += seconds;
}

std::string ServerMetrics::text(const EventServer::Stats& server) const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP etl_http_requests_total HTTP requests answered, by route, method and status.\n"
         "# TYPE etl_http_requests_total counter\n";
  for (const auto& [key, count] : requests_) {
    const auto& [route, method, status] = key;
    out += "etl_http_requests_total{route=\"" + label(route) + "\",method=\"" + label(method) + "\",status=\"" +
           std::to_string(status) + "\"} " + std::to_string(count) + "\n";
  }
  out += "# HELP etl_http_request_duration_seconds Seconds from a request's arrival to its answer, by route.\n"
         "# TYPE etl_http_request_duration_seconds histogram\n";
  for (const auto& [route, latency] : latency_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < buckets().size(); ++i) {
      cumulative += i < latency.counts.size() ? latency.counts[i] : 0;
      out += "etl_http_request_duration_seconds_bucket{route=\"" + label(route) + "\",le=\"" + number(buckets()[i]) + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out += "etl_http_request_duration_seconds_bucket{route=\"" + label(route) + "\",le=\"+Inf\"} " +
           std::to_string(latency.total) + "\n";
    out += "etl_http_request_duration_seconds_sum{route=\"" + label(route) + "\"} " + number(latency.sum) + "\n";
    out += "etl_http_request_duration_seconds_count{route=\"" + label(route) + "\"} " + std::to_string(latency.total) + "\n";
  }
  out += "# HELP etl_http_connections_open Connections open now.\n# TYPE etl_http_connections_open gauge\n";
  out += "etl_http_connections_open " + std::to_string(server.open) + "\n";
  out += "# HELP etl_http_connections_total Connections accepted, and refused over max_connections.\n"
         "# TYPE etl_http_connections_total counter\n";
  out += "etl_http_connections_total{result=\"accepted\"} " + std::to_string(server.accepted) + "\n";
  out += "etl_http_connections_total{result=\"refused\"} " + std::to_string(server.refused) + "\n";
  out += "# HELP etl_http_timeouts_total Connections ended or requests answered for taking too long, by what.\n"
         "# TYPE etl_http_timeouts_total counter\n";
  out += "etl_http_timeouts_total{what=\"headers\"} " + std::to_string(server.timed_out_head) + "\n";
  out += "etl_http_timeouts_total{what=\"body\"} " + std::to_string(server.timed_out_body) + "\n";
  out += "etl_http_timeouts_total{what=\"idle\"} " + std::to_string(server.closed_idle) + "\n";
  out += "etl_http_timeouts_total{what=\"response\"} " + std::to_string(server.response_timeouts) + "\n";
  out += "# HELP etl_http_malformed_total Requests refused by the parser (400, 413, 431, 501, 505).\n"
         "# TYPE etl_http_malformed_total counter\n";
  out += "etl_http_malformed_total " + std::to_string(server.malformed) + "\n";
  return out;
}

}  // namespace etl::plugins::http_server
