// http-server: a long-running source that turns HTTP requests into records and answers each
// request from its record's final outcome (synchronous responses): ok → the route's status with
// the outcome's detail, rejected → 400/404/409 with the reason, failed → 503. Routes are a
// method and a path pattern (PUT /hello/{username}); a JSON object body becomes typed fields.
// On a stop it closes its listener, answers every request in flight and every request still
// arriving on connections it had accepted (each answer then says Connection: close), and ends
// once those connections are closed or drain_timeout has passed.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/URI.h>

#include "connection_pool.hpp"
#include "etl/sdk.hpp"
#include "http/tls.hpp"
#include "routes.hpp"

namespace etl::plugins::http_server {
namespace {

using nlohmann::json;

/// A body over max_body_bytes is still read, and dropped, up to this, to answer 413 cleanly.
constexpr std::uint64_t kDrainLimit = 64ULL << 20;

struct Config {
  std::string host = "0.0.0.0";
  int port = 8080;
  std::vector<Route> routes;
  std::uint64_t max_body_bytes = 1048576;
  int max_concurrency = 64;
  int max_queued = 256;
  double response_timeout = 30;
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

/// One request waiting for its record's outcome.
struct Exchange {
  sdk::Record record;
  std::mutex mutex;
  std::condition_variable answered;
  std::optional<Answer> answer;
  int ok_status = 200;

  void answer_with(Answer given) {
    std::lock_guard lock(mutex);
    if (!answer) answer = std::move(given);
    answered.notify_all();
  }
};

class HttpServerSource;

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(HttpServerSource& source) : source_(source) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override;

 private:
  HttpServerSource& source_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(HttpServerSource& source) : source_(source) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Handler(source_);
  }

 private:
  HttpServerSource& source_;
};

void send(Poco::Net::HTTPServerResponse& response, const Answer& answer) {
  response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(answer.status));
  if (answer.body.empty()) {
    response.setContentLength(0);
    response.send();
    return;
  }
  response.setContentType("application/json");
  response.setContentLength(static_cast<std::streamsize>(answer.body.size() + 1));
  response.send() << answer.body << "\n";
}

Answer error_answer(int status, const std::string& message, const std::string& code) {
  return {status, json{{"error", message}, {"code", code}}.dump()};
}

class HttpServerSource final : public sdk::Source, public sdk::DrainsOnStop {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("host", &Config::host, "Address to listen on.").min_length(1);
    map.key("port", &Config::port, "Port to listen on.").minimum(1).maximum(65535);
    map.parse_with("routes", route_schema().dump(),
                   "The requests that become records: method, path pattern ({name} segments become fields), the "
                   "status of an ok answer (204: no body). Others are answered 404 or 405 and are no records.",
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
    map.key("max_body_bytes", &Config::max_body_bytes, "A larger body is answered 413 (and reported as refused input).")
        .minimum(0);
    map.key("max_concurrency", &Config::max_concurrency, "Requests handled at once (threads).").minimum(1).maximum(1024);
    map.key("max_queued", &Config::max_queued, "Connections waiting beyond those; more are refused.").minimum(1);
    map.key("response_timeout", &Config::response_timeout,
            "Seconds a request waits for its record's outcome before it is answered 503 (the record goes on).")
        .exclusive_minimum(0);
    map.key("drain_timeout", &Config::drain_timeout,
            "After a stop, seconds open connections have to finish (every answer after the stop says "
            "Connection: close) before the run ends and idle ones are closed.")
        .minimum(0);
    map.key("reuse_port", &Config::reuse_port,
            "SO_REUSEPORT: a second instance can listen on the same port (a rolling restart without a gap).");
    map.key("tls_cert_file", &Config::tls_cert_file, "PEM certificate: serve HTTPS (with tls_key_file).");
    map.key("tls_key_file", &Config::tls_key_file, "PEM private key of tls_cert_file.").secret();
    return map;
  }

  HttpServerSource(Config config, sdk::Context& context) : config_(std::move(config)), context_(context) {
    if (config_.tls_cert_file.empty() != config_.tls_key_file.empty()) {
      throw sdk::ConfigError("/tls_key_file", "HTTPS needs both tls_cert_file and tls_key_file");
    }
  }

  ~HttpServerSource() override {
    stop_accepting();
    // Requests still waiting get an answer rather than a dropped connection.
    std::map<std::uint64_t, std::shared_ptr<Exchange>> waiting;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      waiting.swap(pending_);
      for (auto& exchange : queue_) exchange->answer_with(error_answer(503, "the service is stopping", "stopping"));
      queue_.clear();
    }
    for (auto& [sequence, exchange] : waiting) exchange->answer_with(error_answer(503, "the service is stopping", "stopping"));
    pool_.reset();  // ends idle connections and waits for every thread
  }

  void open() override {
    Poco::Net::ServerSocket socket;
    const Poco::Net::SocketAddress address(config_.host, static_cast<Poco::UInt16>(config_.port));
    try {
      if (config_.tls_cert_file.empty()) {
        socket.bind(address, /*reuseAddress=*/true, config_.reuse_port);
      } else {
        http::initialize_tls_once();
        Poco::Net::Context::Ptr tls(new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, config_.tls_key_file,
                                                           config_.tls_cert_file, "", Poco::Net::Context::VERIFY_NONE));
        Poco::Net::SecureServerSocket secure(tls);
        secure.bind(address, /*reuseAddress=*/true, config_.reuse_port);
        socket = secure;
      }
      socket.listen(config_.max_queued);
    } catch (const Poco::Exception& e) {
      throw sdk::PluginError("cannot listen on " + config_.host + ":" + std::to_string(config_.port) + ": " +
                             e.displayText());
    }
    Poco::Net::HTTPServerParams::Ptr params(new Poco::Net::HTTPServerParams);
    params->setKeepAlive(true);
    pool_ = std::make_unique<ConnectionPool>(socket, params, new Factory(*this),
                                             static_cast<std::size_t>(config_.max_concurrency),
                                             static_cast<std::size_t>(config_.max_queued));
    pool_->start();
    ready_ = true;
    context_.log(sdk::LogLevel::info, "listening on " + std::string(config_.tls_cert_file.empty() ? "http" : "https") +
                                          "://" + config_.host + ":" + std::to_string(socket.address().port()) + " (" +
                                          std::to_string(config_.routes.size()) + " route(s))");
  }

  [[nodiscard]] std::vector<std::string> fields() const override { return {}; }
  [[nodiscard]] bool wants_acknowledgements() const override { return true; }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    std::unique_lock lock(mutex_);
    while (queue_.empty()) {
      if (context_.stop_requested()) {
        lock.unlock();
        stop_accepting();
        if (drained()) {
          lock.lock();
          if (queue_.empty()) {
            closed_ = true;
            return false;
          }
          continue;
        }
        lock.lock();
      }
      arrived_.wait_for(lock, std::chrono::milliseconds(50));
    }
    // What has arrived, at once: a request does not wait for a batch to fill.
    while (!queue_.empty() && batch.size() < max_records) {
      std::shared_ptr<Exchange> exchange = std::move(queue_.front());
      queue_.pop_front();
      const std::uint64_t sequence = ++yielded_;
      batch.push_back(std::move(exchange->record));
      pending_[sequence] = std::move(exchange);
    }
    return true;
  }

  void acknowledge(std::uint64_t sequence, const sdk::Outcome& outcome) override {
    std::shared_ptr<Exchange> exchange;
    {
      std::lock_guard lock(mutex_);
      const auto found = pending_.find(sequence);
      if (found == pending_.end()) return;  // answered already (timed out)
      exchange = std::move(found->second);
      pending_.erase(found);
    }
    exchange->answer_with(answer_for(outcome, exchange->ok_status));
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    sdk::SourceStats stats;
    std::lock_guard lock(mutex_);
    stats.received = yielded_;
    return stats;
  }

  /// Called on the server's threads.
  void handle(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) {
    const Poco::URI uri(request.getURI());
    const std::string path = uri.getPath();
    if (path == "/healthz") return send(response, {200, R"({"status":"ok"})"});
    if (path == "/readyz") {
      const bool ready = ready_ && !context_.stop_requested();
      return send(response, {ready ? 200 : 503, ready ? R"({"status":"ready"})" : R"({"status":"stopping"})"});
    }
    // After a stop, requests on connections accepted before it are still served; each answer
    // closes its connection, so that the client's next request goes to another instance.
    if (context_.stop_requested()) response.setKeepAlive(false);
    const Route* route = nullptr;
    std::vector<std::pair<std::string, std::string>> params;
    bool path_known = false;
    for (const auto& candidate : config_.routes) {
      auto matched = candidate.match(path);
      if (!matched) continue;
      path_known = true;
      if (candidate.method == request.getMethod()) {
        route = &candidate;
        params = std::move(*matched);
        break;
      }
    }
    if (route == nullptr) {
      return send(response, path_known ? error_answer(405, request.getMethod() + " is not allowed on " + path, "method")
                                       : error_answer(404, "no route for " + request.getMethod() + " " + path, "no_route"));
    }
    auto exchange = std::make_shared<Exchange>();
    exchange->ok_status = route->ok_status;
    exchange->record = make_record(request, *route, path, params);
    {
      std::lock_guard lock(mutex_);
      if (closed_) return send(response, error_answer(503, "the service is stopping", "stopping"));
      queue_.push_back(exchange);
    }
    arrived_.notify_one();
    std::unique_lock lock(exchange->mutex);
    if (!exchange->answered.wait_for(lock, std::chrono::duration<double>(config_.response_timeout),
                                     [&] { return exchange->answer.has_value(); })) {
      exchange->answer = error_answer(503, "no outcome within response_timeout", "timeout");
    }
    const Answer answer = *exchange->answer;
    lock.unlock();
    send(response, answer);
  }

 private:
  void stop_accepting() {
    std::lock_guard lock(stop_mutex_);
    if (pool_ && ready_) {
      ready_ = false;
      stop_began_ = std::chrono::steady_clock::now();
      pool_->stop_accepting();
      context_.log(sdk::LogLevel::info, "stopped accepting; answering the requests in flight (" +
                                            std::to_string(pool_->open_connections()) + " open connection(s))");
    }
  }

  /// After a stop: every connection accepted before it is closed, or drain_timeout has passed.
  bool drained() {
    std::lock_guard lock(stop_mutex_);
    if (!pool_ || pool_->open_connections() == 0) return true;
    const std::chrono::duration<double> waited = std::chrono::steady_clock::now() - stop_began_;
    if (waited.count() < config_.drain_timeout) return false;
    context_.log(sdk::LogLevel::warning, std::to_string(pool_->open_connections()) +
                                             " connection(s) still open after drain_timeout; closing them");
    return true;
  }

  sdk::Record make_record(Poco::Net::HTTPServerRequest& request, const Route& route, const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& params) {
    const std::string origin = request.getMethod() + " " + path;
    std::string body;
    std::istream& in = request.stream();
    char chunk[8192];
    std::uint64_t seen = 0;
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
      seen += static_cast<std::uint64_t>(in.gcount());
      if (seen <= config_.max_body_bytes) {
        body.append(chunk, static_cast<std::size_t>(in.gcount()));
      } else if (seen > kDrainLimit) {
        break;  // not worth reading on: the connection is closed after the answer
      }
    }
    if (seen > config_.max_body_bytes) {
      // Read (and dropped) to its end, up to kDrainLimit, so that the client, still sending,
      // gets the answer instead of a reset connection.
      return sdk::Record::refuse_input(origin, "", "http.too_large",
                                       "the body has " + std::string(seen > kDrainLimit ? "more than " : "") +
                                           std::to_string(seen) + " bytes, more than max_body_bytes (" +
                                           std::to_string(config_.max_body_bytes) + ")");
    }
    sdk::Record record;
    record.origin = origin;
    record.set("_route", route.name);
    record.set("_method", request.getMethod());
    for (const auto& [name, value] : params) record.set(name, value);
    if (body.find_first_not_of(" \t\r\n") == std::string::npos) return record;
    if (const auto at = sdk::invalid_utf8_at(body); at != std::string_view::npos) {
      return sdk::Record::refuse_input(origin, "", "invalid_utf8", "the body is not UTF-8 at byte " + std::to_string(at + 1));
    }
    json document;
    try {
      document = json::parse(body);
    } catch (const json::exception& e) {
      return sdk::Record::refuse_input(origin, body.substr(0, 4096), "http.json",
                                       std::string("the body is not JSON: ") + e.what());
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
  std::unique_ptr<ConnectionPool> pool_;
  std::atomic<bool> ready_{false};
  std::mutex stop_mutex_;  // stop_began_
  std::chrono::steady_clock::time_point stop_began_;
  mutable std::mutex mutex_;  // queue_, pending_, yielded_, closed_
  std::condition_variable arrived_;
  std::deque<std::shared_ptr<Exchange>> queue_;
  std::map<std::uint64_t, std::shared_ptr<Exchange>> pending_;
  std::uint64_t yielded_ = 0;
  bool closed_ = false;  // read() has ended: nothing more becomes a record
};

void Handler::handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) {
  try {
    source_.handle(request, response);
  } catch (const std::exception& e) {
    // Never a 500 without a reason, and never an exception into Poco's thread.
    if (!response.sent()) send(response, error_answer(400, std::string("bad request: ") + e.what(), "http.bad_request"));
  }
}

}  // namespace
}  // namespace etl::plugins::http_server

ETL_PLUGIN(etl::plugins::http_server::HttpServerSource, "http-server", "1.0.0",
           "Requests as records, each answered from its record's outcome (synchronous responses)");
