// http-post: each record as an HTTP request (a JSON body by default) to a URL templated from
// its fields; the answer is the record's outcome. 2xx: ok, the response body in the detail.
// 4xx: rejected with the status and body. Connection errors, timeouts, 408, 429 and 5xx mean
// the API is down: the record is tried again with capped backoff (and Retry-After) until the API
// answers or the outage has lasted max_outage, then failed — never dropped. Records with the
// same order_key go through one connection in order; `concurrency` connections in all.
//
// On a stop nothing more is sent: records not yet sent are failed at once ("not sent: the run
// was stopped"), and a request already sent has what is left of the pipeline's drain time
// (settings.drain_timeout) to be answered; then its socket is shut down and it is failed "the run
// was stopped before the API answered" (the API may have it: a retry by the next run carries the
// same idempotency key).

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/SSLException.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>

#include "etl/sdk.hpp"
#include "http/request_watchdog.hpp"
#include "http/tls.hpp"
#include "request_plan.hpp"

namespace etl::plugins::http_post {
namespace {

struct Config {
  std::string url;
  std::string method = "POST";
  std::map<std::string, std::string> headers;
  std::string content_type = "application/json";
  std::string body_field;
  std::vector<std::string> fields;
  std::string idempotency_key;
  std::string idempotency_header = "Idempotency-Key";
  std::string order_key;
  int concurrency = 4;
  double timeout = 30;
  /// Unset: 300 s in a batch run, no bound in a service (a service waits out any outage).
  std::optional<double> max_outage;
  double initial_delay = 0.5;
  double max_delay = 30;
  bool tls_verify = true;
  std::string tls_ca_file;
};

/// Requests waiting for one connection. Bounded: write() waits while it is full.
class RequestQueue {
 public:
  void push(sdk::Record record) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return records_.size() < 64 || closed_; });
    records_.push_back(std::move(record));
    ready_.notify_one();
  }
  bool pop(sdk::Record& record) {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !records_.empty() || closed_; });
    if (records_.empty()) return false;
    record = std::move(records_.front());
    records_.pop_front();
    room_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    ready_.notify_all();
    room_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable room_;
  std::deque<sdk::Record> records_;
  bool closed_ = false;
};

class HttpPostSink final : public sdk::Sink {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("url", &Config::url,
            "http:// or https:// URL; {field} is the record's field, percent-encoded (e.g. .../users/{id}).")
        .required()
        .min_length(1)
        .pattern("^[hH][tT][tT][pP][sS]?://");
    map.key("method", &Config::method, "HTTP method.").one_of({"POST", "PUT", "PATCH", "DELETE"});
    map.key("headers", &Config::headers, "Extra request headers; their values are secrets (never logged or reported).")
        .schema(R"({"additionalProperties": {"type": "string", "secret": true}, "default": {}})");
    map.key("content_type", &Config::content_type, "Content-Type of the body.");
    map.key("body_field", &Config::body_field,
            "Send this field as the body (a JSON field as its document, text as it is); empty: the record as a JSON "
            "object.");
    map.key("fields", &Config::fields, "The record's fields the JSON object has (default: all).");
    map.key("idempotency_key", &Config::idempotency_key,
            "Template of the idempotency key header's value, e.g. \"customer-{id}\" or \"{_origin}\" (the record's "
            "identity); empty: no header. A retried request carries the same key.");
    map.key("idempotency_header", &Config::idempotency_header, "Name of the idempotency key header.").min_length(1);
    map.key("order_key", &Config::order_key,
            "Template of a key, e.g. \"{id}\": requests with one key are sent one after another, in order; empty: "
            "any connection.");
    map.key("concurrency", &Config::concurrency, "Requests in flight at once (one connection each).")
        .minimum(1)
        .maximum(256);
    map.key("timeout", &Config::timeout, "Seconds to connect, and to wait for each part of the answer.").exclusive_minimum(0);
    map.key("max_outage", &Config::max_outage,
            "Seconds the API may stay down (connection errors, 408, 429, 5xx) while a record is retried; then the "
            "record is failed. 0: wait forever. Unset: 300 in a run that ends, 0 in a service (a long-running source).")
        .minimum(0);
    map.key("initial_delay", &Config::initial_delay, "Seconds before the first retry; doubled each time.").exclusive_minimum(0);
    map.key("max_delay", &Config::max_delay, "Cap on the delay between retries (also on a Retry-After).").exclusive_minimum(0);
    map.key("tls_verify", &Config::tls_verify, "Verify the server's certificate and host name (https).");
    map.key("tls_ca_file", &Config::tls_ca_file, "PEM file of CA certificates to trust instead of the system's.");
    return map;
  }

  HttpPostSink(Config config, sdk::Context& context)
      : config_(std::move(config)),
        context_(context),
        url_(make_template(config_.url, "/url", true)),
        idempotency_(make_template(config_.idempotency_key, "/idempotency_key", false)),
        order_(make_template(config_.order_key, "/order_key", false)) {
    try {
      const Poco::URI uri(config_.url);
      where_ = uri.getScheme() + "://" + uri.getHost() + ":" + std::to_string(uri.getPort());
      https_ = Poco::toLower(uri.getScheme()) == "https";
    } catch (const Poco::Exception& e) {
      throw sdk::ConfigError("/url", "not a URL: " + e.message());
    }
  }

  ~HttpPostSink() override { stop_workers(); }

  /// After a stop: true once the drain time is spent (a request in flight is then given up).
  [[nodiscard]] bool drain_spent() const {
    if (!context_.stop_requested()) return false;
    const sdk::ServiceContext* service = sdk::service_of(context_);
    return service == nullptr || service->drain_seconds_left() <= 0;
  }

  void open(sdk::OutcomeReceiver& outcomes) override {
    outcomes_ = &outcomes;
    if (https_) http::initialize_tls_once();
    queues_ = std::vector<RequestQueue>(static_cast<std::size_t>(config_.concurrency));
    for (std::size_t i = 0; i < queues_.size(); ++i) workers_.emplace_back([this, i] { work(i); });
    context_.log(sdk::LogLevel::info, "sending to " + where_ + " (" + std::to_string(config_.concurrency) + " connection(s))");
  }

  void write(std::span<const sdk::Record> records) override {
    for (const auto& record : records) {
      if (context_.stop_requested()) {
        outcomes_->deliver(record.sequence, sdk::Outcome::failed("not sent: the run was stopped", "stopped"));
        continue;
      }
      std::size_t target = next_++ % queues_.size();
      if (!order_.empty()) {
        std::string missing;
        const auto key = order_.expand(record, missing);
        if (!key) {
          outcomes_->deliver(record.sequence, sdk::Outcome::rejected("missing_field", "order_key needs field \"" + missing + "\""));
          continue;
        }
        target = std::hash<std::string>{}(*key) % queues_.size();
      }
      queues_[target].push(record);
    }
  }

  void finish() override { stop_workers(); }

 private:
  static FieldTemplate make_template(const std::string& text, const char* key, bool url) {
    try {
      return FieldTemplate(text, url);
    } catch (const std::invalid_argument& e) {
      throw sdk::ConfigError(key, e.what());
    }
  }

  void stop_workers() {
    for (auto& queue : queues_) queue.close();
    for (auto& worker : workers_) {
      if (worker.joinable()) worker.join();
    }
    workers_.clear();
  }

  struct Answer {
    int status = 0;
    std::string reason;
    std::string body;
    std::string retry_after;
  };

  std::unique_ptr<Poco::Net::HTTPClientSession> connect(const Poco::URI& uri) const {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (https_) {
      session = std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(),
                                                                http::client_context(config_.tls_ca_file, config_.tls_verify));
    } else {
      session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
    }
    const auto timeout = Poco::Timespan(static_cast<long>(config_.timeout * 1e6));
    session->setTimeout(timeout, timeout, timeout);
    session->setKeepAlive(true);
    return session;
  }

  /// The request was sent, and the run stopped before its answer came (within the drain).
  class StoppedBeforeAnswer : public std::runtime_error {
   public:
    StoppedBeforeAnswer() : std::runtime_error("the run was stopped before the API answered") {}
  };

  /// One try; throws Poco::Exception (or std::exception) when no answer came.
  Answer send(std::unique_ptr<Poco::Net::HTTPClientSession>& session, const std::string& url, const std::string& body,
              const std::optional<std::string>& key, http::RequestWatchdog& watchdog) {
    const Poco::URI uri(url);
    if (!session || session->getHost() != uri.getHost() || session->getPort() != uri.getPort()) session = connect(uri);
    Poco::Net::HTTPRequest request(config_.method, uri.getPathAndQuery(), Poco::Net::HTTPMessage::HTTP_1_1);
    request.setContentType(config_.content_type);
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    request.set("User-Agent", "etl-host http-post");
    for (const auto& [name, value] : config_.headers) request.set(name, value);
    if (key) request.set(config_.idempotency_header, *key);
    try {
      session->sendRequest(request) << body;
      // Sent: from here a stop waits for the answer only as long as the drain lasts.
      watchdog.arm(session->socket().impl()->sockfd(), http::RequestWatchdog::Clock::time_point::max());
      struct Disarm {
        http::RequestWatchdog& watchdog;
        ~Disarm() { watchdog.disarm(); }
      } disarm{watchdog};
      Poco::Net::HTTPResponse response;
      std::istream& in = [&]() -> std::istream& {
        try {
          return session->receiveResponse(response);
        } catch (...) {
          if (watchdog.fired()) throw StoppedBeforeAnswer();
          throw;
        }
      }();
      Answer answer;
      answer.status = static_cast<int>(response.getStatus());
      answer.reason = response.getReason();
      answer.retry_after = response.get("Retry-After", "");
      Poco::StreamCopier::copyToString(in, answer.body);
      if (watchdog.fired()) throw StoppedBeforeAnswer();
      if (!response.getKeepAlive()) session.reset();
      return answer;
    } catch (...) {
      session.reset();  // a connection that failed half-way is not reused
      throw;
    }
  }

  std::string render_body(const sdk::Record& record) const {
    if (!config_.body_field.empty()) {
      const sdk::Field* field = record.find(config_.body_field);
      if (field == nullptr) throw std::invalid_argument("the record has no field \"" + config_.body_field + "\"");
      return field->value.text().value_or("");
    }
    nlohmann::json object = nlohmann::json::object();
    if (config_.fields.empty()) {
      object = sdk::to_json_object(record.fields());
    } else {
      for (const auto& name : config_.fields) {
        const sdk::Field* field = record.find(name);
        object[name] = field == nullptr ? nlohmann::json() : sdk::to_json_value(field->value);
      }
    }
    return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }

  sdk::Outcome deliver_one(std::unique_ptr<Poco::Net::HTTPClientSession>& session, sdk::Backoff& outage,
                           http::RequestWatchdog& watchdog, const sdk::Record& record) {
    std::string missing;
    const auto url = url_.expand(record, missing);
    if (!url) return sdk::Outcome::rejected("missing_field", "the url needs field \"" + missing + "\"");
    std::optional<std::string> key;
    if (!idempotency_.empty()) {
      key = idempotency_.expand(record, missing);
      if (!key) return sdk::Outcome::rejected("missing_field", "the idempotency key needs field \"" + missing + "\"");
    }
    std::string body;
    try {
      body = render_body(record);
    } catch (const std::exception& e) {
      return sdk::Outcome::rejected("missing_field", e.what());
    }
    while (true) {
      if (context_.stop_requested()) return sdk::Outcome::failed("not sent: the run was stopped", "stopped");
      std::string problem;
      std::optional<double> retry_after;
      try {
        const Answer answer = send(session, *url, body, key, watchdog);
        const Verdict verdict = classify_status(answer.status);
        if (verdict != Verdict::retry) {
          if (outage.failures() > 0) {
            context_.log(sdk::LogLevel::info, where_ + " answers again after " + seconds(outage.outage_seconds()));
          }
          outage.succeeded();
          sdk::Outcome outcome = verdict == Verdict::ok
                                     ? sdk::Outcome::ok()
                                     : sdk::Outcome::rejected("http_" + std::to_string(answer.status),
                                                              std::to_string(answer.status) + " " + answer.reason +
                                                                  excerpt(answer.body));
          outcome.detail.push_back(sdk::Field{"status", sdk::Value(answer.status)});
          outcome.detail.push_back(sdk::Field{"body", body_value(answer.body)});
          return outcome;
        }
        problem = std::to_string(answer.status) + " " + answer.reason;
        retry_after = retry_after_seconds(answer.retry_after);
      } catch (const StoppedBeforeAnswer& e) {
        session.reset();
        return sdk::Outcome::failed(e.what(), "stopped");
      } catch (const Poco::Net::CertificateValidationException& e) {
        return untrusted_certificate(e.displayText());
      } catch (const Poco::Net::SSLException& e) {
        // Verification failing is no outage: trying again cannot make the certificate trusted.
        if (e.displayText().find("certificate verify failed") != std::string::npos) {
          return untrusted_certificate(e.displayText());
        }
        problem = e.displayText();
      } catch (const Poco::Exception& e) {
        problem = e.displayText();
      } catch (const std::exception& e) {
        problem = e.what();
      }
      if (context_.stop_requested()) {
        return sdk::Outcome::failed("not sent: the run was stopped (last try: " + problem + ")", "stopped");
      }
      // Bound: max_outage seconds of the API being down (0: as long as the run goes on).
      const auto delay = outage.failed(retry_after);
      if (!delay) {
        return sdk::Outcome::failed("the API at " + where_ + " was down for " + seconds(outage.outage_seconds()) +
                                    " (max_outage), last: " + problem);
      }
      if (outage.failures() == 1 || outage.failures() % 10 == 0) {
        context_.log(sdk::LogLevel::warning, where_ + ": " + problem + "; trying again in " + seconds(*delay) + " (try " +
                                                 std::to_string(outage.failures() + 1) + ", down for " +
                                                 seconds(outage.outage_seconds()) + ")");
      }
      if (!sdk::sleep_unless_stopped(context_, *delay)) {
        return sdk::Outcome::failed("not sent: the run was stopped while the API was down (last: " + problem + ")");
      }
    }
  }

  sdk::Outcome untrusted_certificate(const std::string& reason) const {
    return sdk::Outcome::failed("TLS: the certificate of " + where_ + " is not trusted (" + reason +
                                "); not retried: trust its CA with tls_ca_file, or fix the certificate");
  }

  void work(std::size_t index) {
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    sdk::RetryPolicy policy;
    policy.initial_delay = config_.initial_delay;
    policy.max_delay = config_.max_delay;
    policy.max_outage = config_.max_outage.value_or(sdk::is_service(context_) ? 0.0 : 300.0);
    // Attempts do not count: an API is waited for until max_outage (0: for as long as the run goes on).
    sdk::Backoff outage(policy, /*service=*/true);
    http::RequestWatchdog watchdog([this] { return drain_spent(); });
    sdk::Record record;
    while (queues_[index].pop(record)) {
      sdk::Outcome outcome;
      try {
        outcome = context_.stop_requested() ? sdk::Outcome::failed("not sent: the run was stopped", "stopped")
                                            : deliver_one(session, outage, watchdog, record);
      } catch (const std::exception& e) {
        outcome = sdk::Outcome::failed(std::string("cannot send: ") + e.what());
      }
      outcomes_->deliver(record.sequence, std::move(outcome));
    }
  }

  static std::string excerpt(const std::string& body) {
    if (body.empty()) return "";
    return ": " + (body.size() > 300 ? body.substr(0, 300) + "..." : body);
  }
  static std::string seconds(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", value);
    return text;
  }

  Config config_;
  sdk::Context& context_;
  FieldTemplate url_;
  FieldTemplate idempotency_;
  FieldTemplate order_;
  std::string where_;  // scheme://host:port, for messages (never the user info or the path's values)
  bool https_ = false;
  sdk::OutcomeReceiver* outcomes_ = nullptr;
  std::vector<RequestQueue> queues_;
  std::vector<std::thread> workers_;
  std::size_t next_ = 0;
};

}  // namespace
}  // namespace etl::plugins::http_post

ETL_PLUGIN(etl::plugins::http_post::HttpPostSink, "http-post", "1.0.0",
           "Each record as an HTTP request; 2xx ok, 4xx rejected, an API that is down retried until max_outage");
