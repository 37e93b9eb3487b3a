// http-newline: records from an HTTP(S) endpoint that answers newline-separated values.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <memory>
#include <mutex>

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
#include "etl/sdk.hpp"
#include "etl/sdk/retry.hpp"
#include "line_splitter.hpp"

namespace etl::plugins::http_newline {
namespace {

using nlohmann::json;

const std::string kSchema = std::string(R"({
  "type": "object",
  "additionalProperties": false,
  "required": ["url", "size"],
  "properties": {
    "url": {"type": "string", "minLength": 1, "pattern": "^[hH][tT][tT][pP][sS]?://",
            "description": "http:// or https:// URL of the service; the size parameter is added to its query."},
    "method": {"type": "string", "enum": ["POST", "GET"], "default": "POST"},
    "size": {"type": "integer", "minimum": 1, "description": "How many records to ask for in all."},
    "size_parameter": {"type": "string", "minLength": 1, "default": "size",
                       "description": "Name of the query parameter that carries the count."},
    "max_per_request": {"type": "integer", "minimum": 1, "default": 455902,
                        "description": "Largest count one request may ask for; a larger size is split."},
    "body": {"type": "string", "default": "{}", "description": "Request body (POST)."},
    "content_type": {"type": "string", "default": "application/json"},
    "headers": {"type": "object", "default": {}, "additionalProperties": {"type": "string", "secret": true},
                "description": "Extra request headers; their values are treated as secrets."},
    "timeout": {"type": "number", "exclusiveMinimum": 0, "default": 30,
                "description": "Seconds allowed to connect, and between two reads of the body."},
    "field": {"type": "string", "minLength": 1, "default": "token",
              "description": "Name of the record field each line goes into."},
    "max_line_bytes": {"type": "integer", "minimum": 1, "default": 1048576},
    "tls_verify": {"type": "boolean", "default": true,
                   "description": "Verify the server's certificate and host name (https)."},
    "tls_ca_file": {"type": "string", "default": "",
                    "description": "PEM file of CA certificates to trust instead of the system's."},
    "retry": )") + sdk::RetryPolicy::schema(
    "Retries of connection errors, timeouts, 5xx and 429 answers, and bodies that end early: attempts "
    "count per request; a Retry-After is honoured up to max_delay.") + R"(
  }
})";

/// A failure worth trying again (connection trouble, 5xx, 429); `retry_after` from the server.
class RetryableError : public sdk::PluginError {
 public:
  RetryableError(const std::string& message, std::optional<double> retry_after = std::nullopt)
      : sdk::PluginError(message), retry_after(retry_after) {}
  std::optional<double> retry_after;
};

struct Settings {
  Poco::URI uri;
  std::string shown_url;  // without credentials
  std::string method;
  std::uint64_t size = 0;
  std::string size_parameter;
  std::uint64_t max_per_request = 0;
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  Poco::Timespan timeout;
  std::string field;
  std::size_t max_line_bytes = 0;
  bool tls_verify = true;
  std::string tls_ca_file;
  sdk::RetryPolicy retry;
};

std::string without_credentials(const Poco::URI& uri) {
  Poco::URI copy(uri);
  copy.setUserInfo("");
  return copy.toString();
}

/// Exposes the session's protected raw read, which bypasses Poco's lenient body decoding.
template <class Session>
class RawSession : public Session {
 public:
  using Session::Session;
  int read_raw(char* buffer, std::size_t length) {
    return Session::read(buffer, static_cast<std::streamsize>(length));
  }
};

void initialize_tls_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    Poco::Net::initializeSSL();
    // Without a handler, Poco would ask on the console what to do about a bad certificate.
    Poco::Net::SSLManager::InvalidCertificateHandlerPtr reject(
        new Poco::Net::RejectCertificateHandler(false));
    Poco::Net::Context::Ptr context(new Poco::Net::Context(
        Poco::Net::Context::TLS_CLIENT_USE, "", Poco::Net::Context::VERIFY_RELAXED, 9, true));
    Poco::Net::SSLManager::instance().initializeClient(nullptr, reject, context);
  });
}

class HttpNewlineSource final : public sdk::Source {
 public:
  explicit HttpNewlineSource(const sdk::PluginArgs& args) : context_(args.context) {
    const json config = sdk::parse_config(args);
    try {
      settings_.uri = Poco::URI(config.at("url").get<std::string>());
    } catch (const Poco::Exception& e) {
      throw sdk::ConfigError("/url", "not a valid URL: " + e.message());
    }
    const std::string scheme = Poco::toLower(settings_.uri.getScheme());
    if ((scheme != "http" && scheme != "https") || settings_.uri.getHost().empty()) {
      throw sdk::ConfigError("/url", "expected an http:// or https:// URL with a host");
    }
    settings_.shown_url = without_credentials(settings_.uri);
    settings_.method = config.at("method").get<std::string>();
    settings_.size = config.at("size").get<std::uint64_t>();
    settings_.size_parameter = config.at("size_parameter").get<std::string>();
    settings_.max_per_request = config.at("max_per_request").get<std::uint64_t>();
    settings_.body = config.at("body").get<std::string>();
    settings_.content_type = config.at("content_type").get<std::string>();
    for (const auto& [name, value] : config.at("headers").items()) {
      settings_.headers.emplace_back(name, value.get<std::string>());
    }
    settings_.timeout =
        Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(config.at("timeout").get<double>() * 1e6));
    settings_.field = config.at("field").get<std::string>();
    settings_.max_line_bytes = config.at("max_line_bytes").get<std::size_t>();
    settings_.tls_verify = config.at("tls_verify").get<bool>();
    settings_.tls_ca_file = config.at("tls_ca_file").get<std::string>();
    settings_.retry = sdk::RetryPolicy::from_json(config.at("retry"));
    splitter_ = LineSplitter(settings_.max_line_bytes);
    remaining_to_request_ = settings_.size;
  }

  void open() override {
    if (Poco::toLower(settings_.uri.getScheme()) == "https") initialize_tls_once();
  }

  [[nodiscard]] std::vector<std::string> fields() const override { return {settings_.field}; }

  [[nodiscard]] std::optional<std::uint64_t> expected() const override { return settings_.size; }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    while (batch.size() < max_records) {
      // A stop request ends the read with what is complete; the host settles it.
      if (context_.stop_requested()) return false;
      if (auto line = splitter_.next()) {
        emit(batch, std::move(*line));
        continue;
      }
      try {
        if (!body_) {
          if (remaining_to_request_ == 0 || context_.stop_requested()) return false;
          start_request();
          continue;
        }
        if (!pump()) finish_request(batch);
      } catch (const RetryableError& e) {
        if (!wait_before_retry(e)) throw sdk::PluginError(std::string(e.what()) + failed_after());
      }
    }
    return true;
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    return sdk::SourceStats{settings_.size, received_};
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
    return failures_ > 1 ? " (gave up after " + std::to_string(failures_) + " attempts)" : std::string();
  }

  /// Backs off before trying the failed request again: exponential with jitter, or the server's
  /// Retry-After, capped by max_delay. False when the attempts are used up or the run stops.
  bool wait_before_retry(const RetryableError& error) {
    ++failures_;
    if (failures_ >= settings_.retry.attempts || context_.stop_requested()) return false;
    double delay = settings_.retry.delay(failures_, random_);
    if (error.retry_after) delay = std::min(*error.retry_after, settings_.retry.max_delay);
    context_.log(sdk::LogLevel::warning, std::string(error.what()) + "; retrying in " + std::to_string(delay).substr(0, 4) +
                                             " s (attempt " + std::to_string(failures_ + 1) + " of " +
                                             std::to_string(settings_.retry.attempts) + ")");
    return sdk::sleep_unless_stopped(context_, delay);
  }

  /// Puts a failed request's count back, so the next attempt asks for what did not come.
  void give_back_request() {
    remaining_to_request_ += asked_in_request_ - std::min(asked_in_request_, received_in_request_);
    close_request();
  }

  void start_request() {
    asked_in_request_ = std::min(remaining_to_request_, settings_.max_per_request);
    remaining_to_request_ -= asked_in_request_;
    received_in_request_ = 0;
    const std::string target = request_target(asked_in_request_);
    try {
      if (Poco::toLower(settings_.uri.getScheme()) == "https") {
        const auto mode = settings_.tls_verify ? Poco::Net::Context::VERIFY_RELAXED
                                               : Poco::Net::Context::VERIFY_NONE;
        Poco::Net::Context::Ptr tls(new Poco::Net::Context(
            Poco::Net::Context::TLS_CLIENT_USE, settings_.tls_ca_file, mode, 9,
            /*loadDefaultCAs=*/settings_.tls_ca_file.empty()));
        auto session = std::make_unique<RawSession<Poco::Net::HTTPSClientSession>>(
            settings_.uri.getHost(), settings_.uri.getPort(), tls);
        raw_read_ = [s = session.get()](char* b, std::size_t n) { return s->read_raw(b, n); };
        session_ = std::move(session);
      } else {
        auto session = std::make_unique<RawSession<Poco::Net::HTTPClientSession>>(
            settings_.uri.getHost(), settings_.uri.getPort());
        raw_read_ = [s = session.get()](char* b, std::size_t n) { return s->read_raw(b, n); };
        session_ = std::move(session);
      }
      session_->setTimeout(settings_.timeout, settings_.timeout, settings_.timeout);
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
      session_->receiveResponse(response);
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
      BodyReader::Framing framing = BodyReader::Framing::until_close;
      std::uint64_t length = 0;
      if (response.getChunkedTransferEncoding()) {
        framing = BodyReader::Framing::chunked;
      } else if (response.hasContentLength()) {
        framing = BodyReader::Framing::content_length;
        length = static_cast<std::uint64_t>(response.getContentLength64());
      }
      body_ = std::make_unique<BodyReader>(raw_read_, framing, length);
      context_.log(sdk::LogLevel::debug, describe_request() + ": HTTP " + std::to_string(status));
    } catch (const RetryableError&) {
      give_back_request();
      throw;
    } catch (const sdk::PluginError&) {
      close_request();
      throw;
    } catch (const Poco::Exception& e) {
      const std::string message = describe_request() + ": " + e.displayText();
      give_back_request();
      throw RetryableError(message);
    }
    failures_ = 0;
  }

  /// Reads the next piece of the body into the splitter; false at the end of the body.
  bool pump() {
    try {
      const std::size_t n = body_->read(chunk_, sizeof chunk_);
      if (n == 0) return false;
      splitter_.feed(std::string_view(chunk_, n));
      return true;
    } catch (const TruncatedBody& e) {
      // The complete lines already yielded stand; the shortfall is asked for again.
      const std::size_t lost = splitter_.partial_bytes();
      const std::string message = describe_request() + ": " + e.what() + "; received " +
                                  std::to_string(received_in_request_) + " complete line(s)" +
                                  (lost != 0 ? ", dropped a partial last line of " + std::to_string(lost) + " byte(s)"
                                             : std::string());
      give_back_request();
      throw RetryableError(message);
    } catch (const LineTooLong& e) {
      close_request();
      throw sdk::PluginError(describe_request() + ": " + e.what() + " (max_line_bytes)");
    } catch (const Poco::TimeoutException&) {
      const std::string message = describe_request() + ": no data for " +
                                  std::to_string(settings_.timeout.totalSeconds()) + " s (timeout)";
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
    if (auto last = splitter_.finish()) emit(batch, std::move(*last));
    if (received_in_request_ < asked_in_request_) {
      context_.log(sdk::LogLevel::warning,
                   describe_request() + ": asked for " + std::to_string(asked_in_request_) +
                       ", received " + std::to_string(received_in_request_));
    }
    close_request();
  }

  void close_request() {
    body_.reset();
    raw_read_ = nullptr;
    session_.reset();
    splitter_.reset();
  }

  sdk::Context& context_;
  Settings settings_;
  LineSplitter splitter_;
  std::unique_ptr<Poco::Net::HTTPClientSession> session_;
  BodyReader::RawRead raw_read_;
  std::unique_ptr<BodyReader> body_;
  char chunk_[64 * 1024];
  std::uint64_t remaining_to_request_ = 0;
  std::uint64_t asked_in_request_ = 0;
  std::uint64_t received_in_request_ = 0;
  std::uint64_t received_ = 0;
  int failures_ = 0;  // consecutive failed attempts of the current request
  std::mt19937 random_{std::random_device{}()};
};

const sdk::PluginDescriptor kDescriptor{
    sdk::kDescriptorMagic,
    sdk::kAbiVersion,
    "http-newline",
    sdk::PluginKind::source,
    "1.0.0",
    "Records from an HTTP(S) endpoint that answers newline-separated values (one record per line)",
    kSchema.c_str(),
    &sdk::make_source<HttpNewlineSource>,
    nullptr,
    nullptr,
};

}  // namespace
}  // namespace etl::plugins::http_newline

ETL_PLUGIN_DESCRIPTOR(etl::plugins::http_newline::kDescriptor);
