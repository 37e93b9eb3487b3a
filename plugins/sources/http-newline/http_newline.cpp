// http-newline: records from an HTTP(S) endpoint that answers newline-separated values.

#include <algorithm>
#include <cstdio>
#include <type_traits>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <map>
#include <memory>
#include <mutex>

#include <poll.h>

#include <Poco/Exception.h>
#include <Poco/NumberParser.h>
#include <Poco/Net/HTTPBasicCredentials.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLException.h>
#include <Poco/Net/SSLManager.h>
#include <Poco/String.h>
#include <Poco/URI.h>

#include "body_reader.hpp"
#include "http/tls.hpp"
#include "http/request_watchdog.hpp"
#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "etl/sdk/credentials.hpp"
#include "etl/sdk/retry.hpp"
#include "line_splitter.hpp"

namespace etl::plugins::http_newline {
using http::RequestWatchdog;

namespace {

using nlohmann::json;

/// The config as declared (see config_map()); turned into Settings by the constructor.
struct Config {
  std::string url;
  std::string method = "POST";
  std::uint64_t size = 0;
  std::string size_parameter = "size";
  std::uint64_t max_per_request = 455902;
  std::string body = "{}";
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers;
  double timeout = 30;
  double request_timeout = 300;
  std::string field = "token";
  std::uint64_t max_line_bytes = 1048576;
  bool tls_verify = true;
  std::string tls_ca_file;
  sdk::RetryPolicy retry;
};

/// The run was asked to stop while a request was in progress.
struct Stopped {};

/// A failure worth trying again (connection trouble, 5xx, 429); `retry_after` from the server.
class RetryableError : public sdk::PluginError {
 public:
  RetryableError(const std::string& message, std::optional<double> retry_after = std::nullopt)
      : sdk::PluginError(message), retry_after(retry_after) {}
  std::optional<double> retry_after;
};

/// The config as declared, and what the source derives from it once.
struct Settings : Config {
  Poco::URI uri;
  std::string shown_url;  // without credentials
  Poco::Timespan read_timeout;                   // from timeout
  std::chrono::milliseconds request_deadline{0};  // from request_timeout
};

/// The URL as messages show it: no user info, credential-like query values replaced by ***.
std::string without_credentials(const Poco::URI& uri) {
  Poco::URI copy(uri);
  copy.setUserInfo("");
  return sdk::redact_urls(copy.toString());
}

/// Exposes the session's protected raw read, which bypasses Poco's lenient body decoding.
template <class Session>
class RawSession : public Session {
 public:
  using Session::Session;
  int read_raw(char* buffer, std::size_t length) {
    return Session::read(buffer, static_cast<std::streamsize>(length));
  }
  /// Whether a read would return at once: bytes in the session's buffer, in TLS's buffer, or
  /// waiting on the socket.
  bool data_ready() {
    if (Session::buffered() > 0 || Session::socket().available() > 0) return true;
    pollfd readable{static_cast<int>(Session::socket().impl()->sockfd()), POLLIN, 0};
    return ::poll(&readable, 1, 0) > 0;
  }
};

class HttpNewlineSource final : public sdk::Source {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("url", &Config::url, "http:// or https:// URL of the service; the size parameter is added to its query.")
        .required()
        .min_length(1)
        .pattern("^[hH][tT][tT][pP][sS]?://");
    map.key("method", &Config::method, "HTTP method of the requests.").one_of({"POST", "GET"});
    map.key("size", &Config::size, "How many records to ask for in all.").required().minimum(1);
    map.key("size_parameter", &Config::size_parameter, "Name of the query parameter that carries the count.").min_length(1);
    map.key("max_per_request", &Config::max_per_request, "Largest count one request may ask for; a larger size is split.")
        .minimum(1);
    map.key("body", &Config::body, "Request body (POST).");
    map.key("content_type", &Config::content_type, "Content-Type of the request body.");
    map.key("headers", &Config::headers, "Extra request headers; their values are treated as secrets.")
        .schema(R"({"additionalProperties": {"type": "string", "secret": true}, "default": {}})");
    map.key("timeout", &Config::timeout, "Seconds allowed to connect, and between two reads of the body.")
        .exclusive_minimum(0);
    map.key("request_timeout", &Config::request_timeout,
            "Seconds one request may spend waiting for the server in all (headers and body; the time the sink "
            "takes does not count). A request over it is ended and counts as a failed attempt.")
        .exclusive_minimum(0);
    map.key("field", &Config::field, "Name of the record field each line goes into.").min_length(1);
    map.key("max_line_bytes", &Config::max_line_bytes, "Longest line accepted; a longer one fails the run.").minimum(1);
    map.key("tls_verify", &Config::tls_verify, "Verify the server's certificate and host name (https).");
    map.key("tls_ca_file", &Config::tls_ca_file, "PEM file of CA certificates to trust instead of the system's.");
    sdk::RetryPolicy::declare(map, &Config::retry,
                              "Retries of connection errors, timeouts, 5xx and 429 answers, and bodies that end early: "
                              "attempts count failed requests in a row that yielded no complete record; a Retry-After "
                              "is honoured up to max_delay.");
    return map;
  }

  HttpNewlineSource(Config config, sdk::Context& context) : context_(context) {
    static_cast<Config&>(settings_) = std::move(config);
    backoff_ = sdk::Backoff(settings_.retry, /*service=*/false);
    try {
      settings_.uri = Poco::URI(settings_.url);
    } catch (const Poco::Exception& e) {
      throw sdk::ConfigError("/url", "not a valid URL: " + e.message());
    }
    const std::string scheme = Poco::toLower(settings_.uri.getScheme());
    if ((scheme != "http" && scheme != "https") || settings_.uri.getHost().empty()) {
      throw sdk::ConfigError("/url", "expected an http:// or https:// URL with a host");
    }
    settings_.shown_url = without_credentials(settings_.uri);
    settings_.read_timeout = Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(settings_.timeout * 1e6));
    settings_.request_deadline =
        std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(settings_.request_timeout * 1000)));
    splitter_ = LineSplitter(static_cast<std::size_t>(settings_.max_line_bytes));
    remaining_to_request_ = settings_.size;
  }

  void open() override {
    if (Poco::toLower(settings_.uri.getScheme()) == "https") http::initialize_tls_once();
    watchdog_ = std::make_unique<RequestWatchdog>([this] { return context_.stop_requested(); });
  }

  [[nodiscard]] std::vector<std::string> fields() const override { return {settings_.field}; }

  [[nodiscard]] std::optional<std::uint64_t> expected() const override { return settings_.size; }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    if (pending_retry_) {
      // A failure met during the last read, which first handed over the records it had.
      const RetryableError failure = std::move(*pending_retry_);
      pending_retry_.reset();
      if (!wait_before_retry(failure)) return give_up(failure);
    }
    while (batch.size() < max_records) {
      // A stop request ends the read with what is complete; the host settles it.
      if (context_.stop_requested()) return false;
      try {
        if (auto line = splitter_.next()) {
          emit(batch, std::move(*line));
          if (received_in_request_ >= asked_in_request_ && body_) finish_full_request();
          continue;
        }
        if (!body_) {
          if (remaining_to_request_ == 0) return false;
          start_request();
          continue;
        }
        // Records in hand go to the sink before the read waits for a slow server.
        if (!batch.empty() && !data_ready_()) return true;
        if (!pump()) finish_request(batch);
      } catch (const LineTooLong& e) {
        close_request();
        throw sdk::PluginError(describe_request() + ": " + e.what() + " (max_line_bytes)");
      } catch (const Stopped&) {
        return false;
      } catch (const RetryableError& e) {
        if (context_.stop_requested()) return false;
        // A request that brought complete records made progress: its failure starts a new count.
        if (progressed_) backoff_.succeeded();
        if (!batch.empty()) {
          // Hand over what is complete before waiting: the sink must not wait for the retry.
          pending_retry_ = e;
          return true;
        }
        if (!wait_before_retry(e)) return give_up(e);
      }
    }
    return true;
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    sdk::SourceStats stats;
    stats.requested = settings_.size;
    stats.received = received_;
    return stats;
  }

 private:
  void emit(sdk::Batch& batch, std::string line) {
    sdk::Record record;
    record.set(settings_.field, std::move(line));
    batch.push_back(std::move(record));
    ++received_;
    ++received_in_request_;
  }

  std::string request_target(std::uint64_t count) const {
    Poco::URI uri(settings_.uri);
    uri.addQueryParameter(settings_.size_parameter, std::to_string(count));
    return uri.getPathEtc().empty() ? "/" : uri.getPathEtc();
  }

  std::string describe_request() const {
    return settings_.method + " " + settings_.shown_url + " (" + settings_.size_parameter + "=" +
           std::to_string(asked_in_request_) + ")";
  }

  std::string failed_after() const {
    return backoff_.failures() > 1 ? " (gave up " + backoff_.spent_text() + ")" : std::string();
  }

  /// Backs off before trying the failed request again: exponential with jitter, or the server's
  /// Retry-After, capped by max_delay. False when the attempts are used up or the run stops.
  bool wait_before_retry(const RetryableError& error) {
    // Bound: retry.attempts failed requests in a row without a complete record (max_outage too, when set).
    const auto delay = backoff_.failed(error.retry_after);
    if (!delay || context_.stop_requested()) return false;
    context_.log(sdk::LogLevel::warning, std::string(error.what()) + "; retrying in " + sdk::seconds_text(*delay) + " (" +
                                             backoff_.progress_text() + ")");
    return sdk::sleep_unless_stopped(context_, *delay);
  }

  /// Ends the read after the last attempt failed (or the run stopped while waiting for it).
  bool give_up(const RetryableError& failure) {
    if (context_.stop_requested()) return false;
    throw sdk::PluginError(std::string(failure.what()) + failed_after());
  }

  /// Puts a failed request's count back, so the next attempt asks for what did not come.
  void give_back_request() {
    remaining_to_request_ += asked_in_request_ - std::min(asked_in_request_, received_in_request_);
    progressed_ = received_in_request_ > 0;
    close_request();
  }

  /// Runs one blocking network call under the watchdog: the request's time budget
  /// (request_timeout) shrinks by the time spent, and a stop request ends the call at once.
  template <class F>
  decltype(auto) guarded(F&& call) {
    const int socket = session_ && session_->socket().impl() != nullptr
                           ? static_cast<int>(session_->socket().impl()->sockfd())
                           : -1;
    const auto started = RequestWatchdog::Clock::now();
    if (socket >= 0) watchdog_->arm(socket, started + (settings_.request_deadline - waited_in_request_));
    // Disarmed on every way out, before the socket can be closed.
    struct Disarm {
      explicit Disarm(RequestWatchdog& watchdog) : watchdog(watchdog) {}
      ~Disarm() { now(); }
      std::optional<RequestWatchdog::Reason> now() {
        if (!done) fired = watchdog.disarm();
        done = true;
        return fired;
      }
      RequestWatchdog& watchdog;
      std::optional<RequestWatchdog::Reason> fired;
      bool done = false;
    } disarm(*watchdog_);
    auto check = [&] {
      waited_in_request_ += std::chrono::duration_cast<std::chrono::milliseconds>(RequestWatchdog::Clock::now() - started);
      const auto fired = disarm.now();
      if (fired == RequestWatchdog::Reason::stopped || context_.stop_requested()) {
        close_request();
        throw Stopped{};
      }
      if (fired == RequestWatchdog::Reason::deadline || waited_in_request_ >= settings_.request_deadline) {
        const std::string message = describe_request() + ": the server took more than " +
                                    seconds(settings_.request_deadline) + " (request_timeout) and sent " +
                                    std::to_string(received_in_request_) + " complete line(s)";
        give_back_request();
        throw RetryableError(message);
      }
    };
    try {
      if constexpr (std::is_void_v<decltype(call())>) {
        call();
        check();
      } else {
        decltype(auto) result = call();
        check();
        return result;
      }
    } catch (const Stopped&) {
      throw;
    } catch (const RetryableError&) {
      throw;
    } catch (...) {
      // The call failed because the watchdog shut its socket: say why, not "connection reset".
      check();
      throw;
    }
  }

  static std::string seconds(std::chrono::milliseconds value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(value.count()) / 1000.0);
    return text;
  }

  void start_request() {
    asked_in_request_ = std::min(remaining_to_request_, settings_.max_per_request);
    remaining_to_request_ -= asked_in_request_;
    received_in_request_ = 0;
    waited_in_request_ = std::chrono::milliseconds(0);
    progressed_ = false;
    const std::string target = request_target(asked_in_request_);
    try {
      if (Poco::toLower(settings_.uri.getScheme()) == "https") {
        const Poco::Net::Context::Ptr tls = http::client_context(settings_.tls_ca_file, settings_.tls_verify);
        auto session = std::make_unique<RawSession<Poco::Net::HTTPSClientSession>>(
            settings_.uri.getHost(), settings_.uri.getPort(), tls);
        raw_read_ = [s = session.get()](char* b, std::size_t n) { return s->read_raw(b, n); };
        data_ready_ = [s = session.get()] { return s->data_ready(); };
        session_ = std::move(session);
      } else {
        auto session = std::make_unique<RawSession<Poco::Net::HTTPClientSession>>(
            settings_.uri.getHost(), settings_.uri.getPort());
        raw_read_ = [s = session.get()](char* b, std::size_t n) { return s->read_raw(b, n); };
        data_ready_ = [s = session.get()] { return s->data_ready(); };
        session_ = std::move(session);
      }
      session_->setTimeout(settings_.read_timeout, settings_.read_timeout, settings_.read_timeout);
      session_->setKeepAlive(false);

      Poco::Net::HTTPRequest request(settings_.method, target, Poco::Net::HTTPMessage::HTTP_1_1);
      request.set("Accept", "text/plain");
      request.set("User-Agent", "etl-host http-newline");
      if (!settings_.uri.getUserInfo().empty()) {
        const std::string& user_info = settings_.uri.getUserInfo();
        const auto colon = user_info.find(':');
        std::string user;
        std::string password;
        Poco::URI::decode(user_info.substr(0, colon), user);
        if (colon != std::string::npos) Poco::URI::decode(user_info.substr(colon + 1), password);
        Poco::Net::HTTPBasicCredentials(user, password).authenticate(request);
      }
      for (const auto& [name, value] : settings_.headers) request.set(name, value);
      if (settings_.method == "POST") {
        request.setContentType(settings_.content_type);
        request.setContentLength(static_cast<std::streamsize>(settings_.body.size()));
      }
      std::ostream& out = session_->sendRequest(request);
      if (settings_.method == "POST") out << settings_.body;

      Poco::Net::HTTPResponse response;
      // The stream Poco returns is deliberately not used: see body_reader.hpp.
      guarded([&] { session_->receiveResponse(response); });
      const int status = static_cast<int>(response.getStatus());
      if (status < 200 || status > 299) {
        std::string message = describe_request() + ": HTTP " + std::to_string(status) + " " +
                              response.getReason();
        if (status >= 300 && status < 400 && response.has("Location")) {
          message += " (redirects are not followed; set url to the final address)";
        }
        if (status >= 500 || status == 429) {
          std::optional<double> retry_after;
          if (response.has("Retry-After")) {
            double seconds = 0;
            if (Poco::NumberParser::tryParseFloat(response.get("Retry-After"), seconds) && seconds >= 0) {
              retry_after = seconds;
            }
          }
          throw RetryableError(message, retry_after);
        }
        throw sdk::PluginError(message);
      }
      const std::string type = Poco::toLower(response.getContentType());
      if (type.starts_with("text/html") || type.starts_with("application/json")) {
        throw sdk::PluginError(describe_request() + ": the response is " + response.getContentType() +
                               ", not newline-separated text; is the url right?");
      }
      BodyDecoder::Framing framing = BodyDecoder::Framing::until_close;
      std::uint64_t length = 0;
      if (response.getChunkedTransferEncoding()) {
        framing = BodyDecoder::Framing::chunked;
      } else if (response.hasContentLength()) {
        framing = BodyDecoder::Framing::content_length;
        length = static_cast<std::uint64_t>(response.getContentLength64());
      }
      body_ = std::make_unique<BodyDecoder>(framing, length);
      context_.log(sdk::LogLevel::debug, describe_request() + ": HTTP " + std::to_string(status));
    } catch (const Stopped&) {
      throw;
    } catch (const RetryableError&) {
      if (session_) give_back_request();
      throw;
    } catch (const sdk::PluginError&) {
      close_request();
      throw;
    } catch (const Poco::Exception& e) {
      const std::string message = describe_request() + ": " + e.displayText();
      give_back_request();
      throw RetryableError(message);
    }
  }

  /// Passes what the server has sent to the splitter: one raw read, which waits only when
  /// nothing has come yet; false at the end of the body.
  bool pump() {
    try {
      if (body_->complete()) return false;
      const int n = guarded([&] { return raw_read_(chunk_, sizeof chunk_); });
      if (n <= 0) {
        body_->closed();  // throws TruncatedBody unless the framing is complete
        return false;
      }
      decoded_.clear();
      body_->feed(std::string_view(chunk_, static_cast<std::size_t>(n)), decoded_);
      splitter_.feed(decoded_);
      return true;
    } catch (const Stopped&) {
      throw;
    } catch (const RetryableError&) {
      throw;
    } catch (const TruncatedBody& e) {
      // The complete lines already yielded stand; the shortfall is asked for again.
      const std::size_t lost = splitter_.partial_bytes();
      const std::string message = describe_request() + ": " + e.what() + "; received " +
                                  std::to_string(received_in_request_) + " complete line(s)" +
                                  (lost != 0 ? ", dropped a partial last line of " + std::to_string(lost) + " byte(s)"
                                             : std::string());
      give_back_request();
      throw RetryableError(message);
    } catch (const Poco::TimeoutException&) {
      const std::string message = describe_request() + ": no data for " +
                                  std::to_string(settings_.read_timeout.totalSeconds()) + " s (timeout)";
      give_back_request();
      throw RetryableError(message);
    } catch (const Poco::Exception& e) {
      const std::string message = describe_request() + ": reading the body: " + e.displayText();
      give_back_request();
      throw RetryableError(message);
    } catch (const std::runtime_error& e) {
      close_request();
      throw sdk::PluginError(describe_request() + ": " + e.what());
    }
  }

  void finish_request(sdk::Batch& batch) {
    if (auto last = splitter_.finish()) {
      if (received_in_request_ < asked_in_request_) {
        emit(batch, std::move(*last));
      } else {
        warn_extra();
      }
    }
    backoff_.succeeded();
    if (received_in_request_ < asked_in_request_) {
      context_.log(sdk::LogLevel::warning,
                   describe_request() + ": asked for " + std::to_string(asked_in_request_) +
                       ", received " + std::to_string(received_in_request_));
    }
    close_request();
  }

  /// All the lines asked for have come: the rest of the body, if any, is not read (a server
  /// that sends more than asked, or never stops, must not hold the run).
  void finish_full_request() {
    if (splitter_.partial_bytes() != 0) warn_extra();
    backoff_.succeeded();
    close_request();
  }

  void warn_extra() {
    context_.log(sdk::LogLevel::warning, describe_request() + ": the server sent more than the " +
                                             std::to_string(asked_in_request_) +
                                             " line(s) asked for; the rest of the body was not read");
  }

  void close_request() {
    body_.reset();
    raw_read_ = nullptr;
    data_ready_ = nullptr;
    session_.reset();
    splitter_.reset();
  }

  sdk::Context& context_;
  Settings settings_;
  LineSplitter splitter_;
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
  std::function<int(char*, std::size_t)> raw_read_;
  std::function<bool()> data_ready_;
  std::unique_ptr<BodyDecoder> body_;
  std::string decoded_;
  char chunk_[64 * 1024];
  std::uint64_t remaining_to_request_ = 0;
  std::uint64_t asked_in_request_ = 0;
  std::uint64_t received_in_request_ = 0;
  std::uint64_t received_ = 0;
  sdk::Backoff backoff_{sdk::RetryPolicy{}, false};  // failed requests in a row that yielded no complete record
  bool progressed_ = false;  // the last failed request yielded complete records
  std::chrono::milliseconds waited_in_request_{0};
  std::optional<RetryableError> pending_retry_;
  std::unique_ptr<RequestWatchdog> watchdog_;
};

}  // namespace
}  // namespace etl::plugins::http_newline

ETL_PLUGIN(etl::plugins::http_newline::HttpNewlineSource, "http-newline", "2.0.0",
           "Records from an HTTP(S) endpoint that answers newline-separated values (one record per line)");
