// http-server: a long-running source that turns HTTP requests into records and answers each
// request from its record's final outcome (synchronous responses): ok → the route's status with
// the outcome's detail, rejected → 400/404/409/413 with the reason, failed → 503 with
// Retry-After. Routes are a method and a path pattern (PUT /hello/{username}); a JSON object
// body becomes typed fields. Connections are served by EventServer (event_server.hpp): one
// thread, a deadline on every state, a cap on connections, so slow and idle clients hold no one
// else up. /healthz, /readyz (false while a stage cannot do its work, say its database is down)
// and /metrics (Prometheus) are answered by the server itself. On a stop it closes its listener,
// answers every request in flight and every request still arriving on connections it had
// accepted (each answer then says Connection: close), and ends once those connections are closed
// or the drain time has passed.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "event_server.hpp"
#include "routes.hpp"
#include "server_metrics.hpp"

namespace etl::plugins::http_server {
namespace {

using nlohmann::json;

struct Config {
  std::string host = "0.0.0.0";
  int port = 8080;
  std::vector<Route> routes;
  std::uint64_t max_body_bytes = 1048576;
  int max_header_bytes = 16384;
  int max_concurrency = 256;
  int max_connections = 1024;
  int max_queued = 1024;
  int backlog = 1024;
  double response_timeout = 30;
  double header_timeout = 10;
  double body_timeout = 10;
  double idle_timeout = 5;
  double drain_timeout = 10;
  bool reuse_port = true;
  std::string tls_cert_file;
  std::string tls_key_file;
};

json route_schema() {
  return {{"type", "array"},
          {"minItems", 1},
          {"items",
           {{"type", "object"},
            {"additionalProperties", false},
            {"required", {"method", "path"}},
            {"properties",
             {{"name", {{"type", "string"}, {"description", "The record's _route field (default: METHOD path)."}}},
              {"method", {{"type", "string"}, {"enum", {"GET", "PUT", "POST", "PATCH", "DELETE"}}}},
              {"path", {{"type", "string"}, {"pattern", "^/"}, {"description", "e.g. /hello/{username}"}}},
              {"ok_status", {{"type", "integer"}, {"minimum", 200}, {"maximum", 299}, {"default", 200}}}}}}}};
}

/// A request that became a record, until its answer.
struct Exchange {
  std::uint64_t id = 0;  // the server's
  sdk::Record record;
  std::string route;
  std::string method;
  int ok_status = 200;
  std::chrono::steady_clock::time_point started;
};

HttpResponse to_response(const Answer& answer) {
  HttpResponse response;
  response.status = answer.status;
  if (!answer.body.empty()) response.body = answer.body + "\n";
  if (answer.retry_after > 0) response.headers.emplace_back("Retry-After", std::to_string(answer.retry_after));
  return response;
}

HttpResponse json_response(int status, const json& body) {
  HttpResponse response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return response;
}

class HttpServerSource final : public sdk::Source,
                               public sdk::DrainsOnStop,
                               public sdk::LongRunning,
                               public EventServer::Handler {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("host", &Config::host, "Address to listen on.").min_length(1);
    map.key("port", &Config::port, "Port to listen on (0: any free port, logged).").minimum(0).maximum(65535);
    map.parse_with("routes", route_schema().dump(),
                   "The requests that become records: method, path pattern ({name} segments become fields), the "
                   "status of an ok answer (204: no body). A GET route answers HEAD too. Others are answered 404, or "
                   "405 with Allow for a known path, and are no records.",
                   [](Config& config, const sdk::ConfigValue& value) {
                     const json routes = sdk::to_json(value);
                     for (std::size_t i = 0; i < routes.size(); ++i) {
                       const json& route = routes[i];
                       const std::string method = route.at("method");
                       const std::string path = route.at("path");
                       try {
                         config.routes.push_back(Route::parse(route.value("name", method + " " + path), method, path,
                                                              route.value("ok_status", 200)));
                       } catch (const std::invalid_argument& e) {
                         throw sdk::ConfigError("/routes/" + std::to_string(i) + "/path", e.what());
                       }
                     }
                   })
        .required();
    map.key("max_body_bytes", &Config::max_body_bytes,
            "A larger body is answered 413 at once, without being read (and reported as refused input); the connection "
            "then closes.")
        .minimum(0);
    map.key("max_header_bytes", &Config::max_header_bytes, "Request line and headers longer than this are answered 431.")
        .minimum(1024);
    map.key("max_concurrency", &Config::max_concurrency,
            "Requests whose records are in the pipeline at once; more wait (max_queued, within response_timeout).")
        .minimum(1)
        .maximum(100000);
    map.key("max_connections", &Config::max_connections,
            "Open connections at once; a connection beyond them is answered 503 at once and closed.")
        .minimum(1)
        .maximum(1000000);
    map.key("max_queued", &Config::max_queued,
            "Requests waiting beyond max_concurrency; more are answered 503 with Retry-After at once (load shedding, "
            "never a queue that grows without bound).")
        .minimum(0);
    map.key("backlog", &Config::backlog, "The listen backlog: connections the kernel holds before they are accepted.")
        .minimum(1);
    map.key("response_timeout", &Config::response_timeout,
            "Seconds a request waits for its record's outcome before it is answered 503 (the record goes on).")
        .exclusive_minimum(0);
    map.key("header_timeout", &Config::header_timeout,
            "Seconds a new connection, or a request's line and headers, may take (408; a connection that sent nothing "
            "is closed).")
        .exclusive_minimum(0);
    map.key("body_timeout", &Config::body_timeout,
            "Seconds a request's body may take, at least; a larger body gets as long as 64 KiB/s needs (408).")
        .exclusive_minimum(0);
    map.key("idle_timeout", &Config::idle_timeout, "Seconds a kept-alive connection may wait for its next request.")
        .exclusive_minimum(0);
    map.key("drain_timeout", &Config::drain_timeout,
            "After a stop, seconds at most that open connections have to finish (every answer after the stop says "
            "Connection: close); the pipeline's settings.drain_timeout, shared by every stage, bounds it too.")
        .minimum(0);
    map.key("reuse_port", &Config::reuse_port,
            "SO_REUSEPORT: a second instance can listen on the same port (a rolling restart without a gap).");
    map.key("tls_cert_file", &Config::tls_cert_file, "PEM certificate (chain): serve HTTPS (with tls_key_file).");
    map.key("tls_key_file", &Config::tls_key_file, "PEM private key of tls_cert_file.").secret();
    return map;
  }

  HttpServerSource(Config config, sdk::Context& context) : config_(std::move(config)), context_(context) {
    if (config_.tls_cert_file.empty() != config_.tls_key_file.empty()) {
      throw sdk::ConfigError("/tls_key_file", "HTTPS needs both tls_cert_file and tls_key_file");
    }
    for (const auto& route : config_.routes) metrics_.declare_route(route.name);
  }

  ~HttpServerSource() override {
    if (server_) server_->close();  // every request still waiting is answered 503
  }

  [[nodiscard]] bool runs_until_stopped() const override { return true; }

  void open() override {
    EventServer::Options options;
    options.host = config_.host;
    options.port = config_.port;
    options.reuse_port = config_.reuse_port;
    options.backlog = config_.backlog;
    options.max_connections = static_cast<std::size_t>(config_.max_connections);
    options.header_timeout = config_.header_timeout;
    options.body_timeout = config_.body_timeout;
    options.idle_timeout = config_.idle_timeout;
    options.response_timeout = config_.response_timeout;
    options.limits.max_head_bytes = static_cast<std::size_t>(config_.max_header_bytes);
    options.limits.max_body_bytes = config_.max_body_bytes;
    options.tls_cert_file = config_.tls_cert_file;
    options.tls_key_file = config_.tls_key_file;
    server_ = std::make_unique<EventServer>(options, *this);
    try {
      server_->start();
    } catch (const std::exception& e) {
      throw sdk::PluginError(e.what());
    }
    ready_ = true;
    context_.log(sdk::LogLevel::info, "listening on " + std::string(config_.tls_cert_file.empty() ? "http" : "https") +
                                          "://" + config_.host + ":" + std::to_string(server_->port()) + " (" +
                                          std::to_string(config_.routes.size()) + " route(s), at most " +
                                          std::to_string(config_.max_connections) + " connections)");
  }

  [[nodiscard]] std::vector<std::string> fields() const override { return {}; }
  [[nodiscard]] bool wants_acknowledgements() const override { return true; }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    std::unique_lock lock(mutex_);
    while (queue_.empty()) {
      if (context_.stop_requested()) {
        lock.unlock();
        stop_accepting();
        const bool done = drained();
        lock.lock();
        if (done && queue_.empty()) {
          closed_ = true;
          return false;
        }
        if (done) break;
      }
      arrived_.wait_for(lock, std::chrono::milliseconds(50));
    }
    // What has arrived, at once: a request does not wait for a batch to fill.
    while (!queue_.empty() && batch.size() < max_records) {
      std::shared_ptr<Exchange> exchange = std::move(queue_.front());
      queue_.pop_front();
      const std::uint64_t sequence = ++yielded_;
      batch.push_back(std::move(exchange->record));
      by_exchange_[exchange->id] = sequence;
      pending_[sequence] = std::move(exchange);
    }
    return true;
  }

  void acknowledge(std::uint64_t sequence, const sdk::Outcome& outcome) override {
    std::shared_ptr<Exchange> exchange;
    {
      std::lock_guard lock(mutex_);
      const auto found = pending_.find(sequence);
      if (found == pending_.end()) return;  // answered already (timed out, or its client left)
      exchange = std::move(found->second);
      pending_.erase(found);
      by_exchange_.erase(exchange->id);
      admit_held();
    }
    const sdk::ServiceContext* service = sdk::service_of(context_);
    const Answer answer = answer_for(outcome, exchange->ok_status, service != nullptr ? service->retry_after_seconds() : 2);
    metrics_.answered(exchange->route, exchange->method, answer.status, exchange->started);
    server_->answer(exchange->id, to_response(answer));
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    sdk::SourceStats stats;
    std::lock_guard lock(mutex_);
    stats.received = yielded_;
    return stats;
  }

  // EventServer::Handler, on the server's thread.
  std::optional<HttpResponse> on_request(std::uint64_t id, HttpRequest& request) override {
    const auto started = std::chrono::steady_clock::now();
    const std::string& path = request.path;
    if (path == "/healthz") return json_response(200, {{"status", "ok"}});
    if (path == "/readyz") return readiness();
    if (path == "/metrics") return metrics_response();
    // After a stop, requests on connections accepted before it are still served; each answer
    // closes its connection (EventServer), so that the client's next request goes elsewhere.
    const Route* route = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    std::vector<std::string> allowed;
    for (const auto& candidate : config_.routes) {
      auto matched = candidate.match(path);
      if (!matched) continue;
      allowed.push_back(candidate.method);
      if (candidate.method == "GET") allowed.emplace_back("HEAD");
      const bool method_matches =
          candidate.method == request.method || (candidate.method == "GET" && request.method == "HEAD");
      if (method_matches && route == nullptr) {
        route = &candidate;
        params = std::move(*matched);
      }
    }
    if (route == nullptr) {
      if (allowed.empty()) {
        metrics_.answered("", request.method, 404, started);
        return error_response(404, "no route for " + request.method + " " + path, "no_route");
      }
      std::string allow;
      for (const auto& method : allowed) {
        if (allow.find(method) == std::string::npos) allow += (allow.empty() ? "" : ", ") + method;
      }
      HttpResponse refused = error_response(405, request.method + " is not allowed on " + path, "method");
      refused.headers.emplace_back("Allow", allow);
      metrics_.answered("", request.method, 405, started);
      return refused;
    }
    auto exchange = std::make_shared<Exchange>();
    exchange->id = id;
    exchange->route = route->name;
    exchange->method = request.method;
    exchange->ok_status = route->ok_status;
    exchange->started = started;
    exchange->record = make_record(request, *route, params);
    {
      std::lock_guard lock(mutex_);
      if (closed_) {
        metrics_.answered(route->name, request.method, 503, started);
        return error_response(503, "the service is stopping", "stopping");
      }
      if (queue_.size() + pending_.size() >= static_cast<std::size_t>(config_.max_concurrency)) {
        if (held_.size() >= static_cast<std::size_t>(config_.max_queued)) {
          metrics_.answered(route->name, request.method, 503, started);
          HttpResponse busy = error_response(503, "too many requests at once; try again", "overloaded");
          busy.headers.emplace_back("Retry-After", "1");
          return busy;
        }
        held_.push_back(std::move(exchange));  // becomes a record when a place frees
        return std::nullopt;
      }
      queue_.push_back(std::move(exchange));
    }
    arrived_.notify_one();
    return std::nullopt;
  }

  void on_abandoned(std::uint64_t id, int status) override {
    std::lock_guard lock(mutex_);
    const auto found = by_exchange_.find(id);
    if (found != by_exchange_.end()) {
      const auto pending = pending_.find(found->second);
      if (pending != pending_.end()) {
        if (status != 0) metrics_.answered(pending->second->route, pending->second->method, status, pending->second->started);
        pending_.erase(pending);
      }
      by_exchange_.erase(found);
      admit_held();
      return;
    }
    // Held back (max_concurrency): answered already, so it never becomes a record.
    for (auto held = held_.begin(); held != held_.end(); ++held) {
      if ((*held)->id == id) {
        if (status != 0) metrics_.answered((*held)->route, (*held)->method, status, (*held)->started);
        held_.erase(held);
        return;
      }
    }
    // Not yet read by the host: it stays a record (its outcome is reported), unanswered.
    for (auto& queued : queue_) {
      if (queued->id == id) {
        if (status != 0) metrics_.answered(queued->route, queued->method, status, queued->started);
        queued->id = 0;
      }
    }
  }

 private:
  /// Requests held back by max_concurrency take the places that freed (mutex_ held).
  void admit_held() {
    bool admitted = false;
    while (!held_.empty() && queue_.size() + pending_.size() < static_cast<std::size_t>(config_.max_concurrency)) {
      queue_.push_back(std::move(held_.front()));
      held_.pop_front();
      admitted = true;
    }
    if (admitted) arrived_.notify_one();
  }

  HttpResponse readiness() {
    if (!ready_ || context_.stop_requested()) return json_response(503, {{"status", "stopping"}});
    std::string reason;
    const sdk::ServiceContext* service = sdk::service_of(context_);
    if (service != nullptr && !service->pipeline_ready(&reason)) {
      HttpResponse response = json_response(503, {{"status", "not ready"}, {"reason", reason}});
      response.headers.emplace_back("Retry-After", std::to_string(service->retry_after_seconds()));
      return response;
    }
    return json_response(200, {{"status", "ready"}});
  }

  HttpResponse metrics_response() {
    HttpResponse response;
    response.status = 200;
    response.content_type = "text/plain; version=0.0.4; charset=utf-8";
    const sdk::ServiceContext* service = sdk::service_of(context_);
    response.body = (service != nullptr ? service->metrics_text() : std::string()) + metrics_.text(server_->stats());
    return response;
  }

  void stop_accepting() {
    std::lock_guard lock(stop_mutex_);
    if (!server_ || !ready_) return;
    ready_ = false;
    stop_began_ = std::chrono::steady_clock::now();
    server_->stop_accepting();
    context_.log(sdk::LogLevel::info, "stopped accepting; answering the requests in flight (" +
                                          std::to_string(server_->open_connections()) + " open connection(s))");
  }

  /// After a stop: every connection accepted before it is closed, or the drain time has passed.
  bool drained() {
    std::lock_guard lock(stop_mutex_);
    if (!server_ || server_->open_connections() == 0) return true;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_began_).count();
    double limit = config_.drain_timeout;
    if (const sdk::ServiceContext* service = sdk::service_of(context_)) {
      limit = std::min(limit, waited + service->drain_seconds_left());
    }
    if (waited < limit) return false;
    if (!drain_logged_) {
      drain_logged_ = true;
      context_.log(sdk::LogLevel::warning, std::to_string(server_->open_connections()) +
                                               " connection(s) still open after the drain time; closing them");
    }
    return true;
  }

  sdk::Record make_record(const HttpRequest& request, const Route& route,
                          const std::vector<std::pair<std::string, std::string>>& params) {
    const std::string origin = request.method + " " + request.path;
    if (request.too_large) {
      return sdk::Record::refuse_input(origin, "", "http.too_large",
                                       "the body has " + std::to_string(request.body_bytes) + " bytes, more than max_body_bytes (" +
                                           std::to_string(config_.max_body_bytes) + ")");
    }
    sdk::Record record;
    record.origin = origin;
    record.set("_route", route.name);
    record.set("_method", request.method);
    for (const auto& [name, value] : params) record.set(name, value);
    const std::string& body = request.body;
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) return record;
    if (const auto at = sdk::invalid_utf8_at(body); at != std::string_view::npos) {
      return sdk::Record::refuse_input(origin, "", "invalid_utf8", "the body is not UTF-8 at byte " + std::to_string(at + 1));
    }
    json document;
    try {
      document = json::parse(body);
    } catch (const json::exception& e) {
      return sdk::Record::refuse_input(origin, body.substr(0, 4096), "http.json", std::string("the body is not JSON: ") + e.what());
    }
    if (!document.is_object()) {
      return sdk::Record::refuse_input(origin, body.substr(0, 4096), "http.json",
                                       std::string("the body is JSON ") + document.type_name() + ", not an object");
    }
    for (const auto& [name, value] : document.items()) {
      // Path parameters win: the URL says which resource, whatever the body claims.
      if (record.find(name) == nullptr) record.set(name, sdk::from_json_value(value));
    }
    return record;
  }

  Config config_;
  sdk::Context& context_;
  std::unique_ptr<EventServer> server_;
  ServerMetrics metrics_;
  std::atomic<bool> ready_{false};
  std::mutex stop_mutex_;  // stop_began_, drain_logged_
  std::chrono::steady_clock::time_point stop_began_;
  bool drain_logged_ = false;
  mutable std::mutex mutex_;  // queue_, held_, pending_, by_exchange_, yielded_, closed_
  std::condition_variable arrived_;
  std::deque<std::shared_ptr<Exchange>> queue_;
  std::deque<std::shared_ptr<Exchange>> held_;  // beyond max_concurrency, waiting for a place
  std::map<std::uint64_t, std::shared_ptr<Exchange>> pending_;  // by record sequence
  std::unordered_map<std::uint64_t, std::uint64_t> by_exchange_;  // server exchange -> sequence
  std::uint64_t yielded_ = 0;
  bool closed_ = false;  // read() has ended: nothing more becomes a record
};

}  // namespace
}  // namespace etl::plugins::http_server

ETL_PLUGIN(etl::plugins::http_server::HttpServerSource, "http-server", "2.0.0",
           "Requests as records, each answered from its record's outcome (synchronous responses)");
