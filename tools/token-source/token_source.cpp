// token-source: an emulator of the token provider, for tests, benchmarks and local runs.
//
//   POST <any path>?size=N  ->  N random 22-character base64url tokens, one per line
//
// Query parameters (or --mode for every request) select misbehaviour the tests need:
//   mode=normal            the default
//   mode=short             answers `short_by` (default 1) fewer tokens than asked
//   mode=error500|error503|error429  answers that status (503 and 429 with Retry-After:
//                          `retry_after`, default 1)
//   mode=slow              sleeps `delay_ms` (default 200) between blocks of lines
//   mode=truncate          chunked body cut in the middle of a line, no terminating chunk
//   mode=truncate-length   Content-Length body cut in the middle of a line
//   mode=html              200 with an HTML page
//   mode=empty             200 with an empty body
//   mode=redirect          302 to the same path
//   fail_first=K&key=NAME  the first K requests with that key behave as `fail_mode` (default
//                          error503; truncate works too), later ones as `mode`
//   duplicates=K           the first K tokens are sent twice
//   dash=always|never      every token / no token contains '-'
//   inject=nul|invalid-utf8|huge-line|blank|crlf
//                          the second line is hostile instead of a token: one with a NUL byte,
//                          with bytes that are not UTF-8, a 1 MiB line, an empty line, or a
//                          token ended by CR LF
// A size above --max (default 455902) is answered 400, as the real provider does.

#include <csignal>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/NumberParser.h>
#include <Poco/URI.h>
#include <Poco/Util/HelpFormatter.h>

namespace {

using Poco::Net::HTTPResponse;

struct Options {
  std::string bind = "127.0.0.1";
  Poco::UInt16 port = 0;
  std::string mode = "normal";
  std::string tls_cert;
  std::string tls_key;
  std::uint64_t max = 455902;
  std::uint64_t seed = 0;
  bool seeded = false;
};

class Counters {
 public:
  std::uint64_t next(const std::string& key) {
    std::lock_guard lock(mutex_);
    return ++counts_[key];
  }
  std::uint64_t next_request() {
    std::lock_guard lock(mutex_);
    return ++requests_;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::uint64_t> counts_;
  std::uint64_t requests_ = 0;
};

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string make_token(std::mt19937_64& random, const std::string& dash) {
  std::string token(22, 'A');
  while (true) {
    for (auto& c : token) c = kAlphabet[random() % 64];
    const bool has_dash = token.find('-') != std::string::npos;
    if (dash == "always" && !has_dash) token[random() % 22] = '-';
    if (dash == "never" && has_dash) continue;
    return token;
  }
}

class TokenHandler : public Poco::Net::HTTPRequestHandler {
 public:
  TokenHandler(const Options& options, Counters& counters) : options_(options), counters_(counters) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
    // Drain the request body ("{}" from the real client).
    request.stream().ignore(std::numeric_limits<std::streamsize>::max());
    const Poco::URI uri(request.getURI());
    std::map<std::string, std::string> query;
    for (const auto& [key, value] : uri.getQueryParameters()) query[key] = value;
    auto param = [&](const std::string& key, const std::string& fallback) {
      const auto it = query.find(key);
      return it == query.end() ? fallback : it->second;
    };
    std::string mode = param("mode", options_.mode);
    response.setKeepAlive(false);

    if (request.getMethod() != "POST") {
      return plain(response, HTTPResponse::HTTP_METHOD_NOT_ALLOWED, "use POST\n");
    }
    std::uint64_t size = 0;
    if (!Poco::NumberParser::tryParseUnsigned64(param("size", ""), size)) {
      return plain(response, HTTPResponse::HTTP_BAD_REQUEST, "size must be a non-negative integer\n");
    }
    if (size > options_.max) {
      return plain(response, HTTPResponse::HTTP_BAD_REQUEST,
                   "size must be at most " + std::to_string(options_.max) + "\n");
    }
    const std::uint64_t fail_first = std::stoull(param("fail_first", "0"));
    if (fail_first > 0 && counters_.next(param("key", "default")) <= fail_first) {
      mode = param("fail_mode", "error503");
    }
    if (mode == "error500") return plain(response, HTTPResponse::HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    if (mode == "error429") {
      response.set("Retry-After", param("retry_after", "1"));
      return plain(response, HTTPResponse::HTTP_TOO_MANY_REQUESTS, "slow down\n");
    }
    if (mode == "error503") {
      response.set("Retry-After", param("retry_after", "1"));
      return plain(response, HTTPResponse::HTTP_SERVICE_UNAVAILABLE, "unavailable\n");
    }
    if (mode == "html") {
      response.setContentType("text/html; charset=utf-8");
      return plain(response, HTTPResponse::HTTP_OK, "<html><body>Login required</body></html>\n", false);
    }
    if (mode == "empty") return plain(response, HTTPResponse::HTTP_OK, "");
    if (mode == "redirect") {
      response.set("Location", uri.getPath());
      return plain(response, HTTPResponse::HTTP_FOUND, "moved\n");
    }

    std::uint64_t count = size;
    if (mode == "short") count -= std::min<std::uint64_t>(count, std::stoull(param("short_by", "1")));
    const std::uint64_t duplicates = std::stoull(param("duplicates", "0"));
    const std::uint64_t request_number = counters_.next_request();
    std::mt19937_64 random(options_.seeded ? options_.seed * 1000003 + request_number : std::random_device{}());
    const std::string dash = param("dash", "random");
    const int delay_ms = std::stoi(param("delay_ms", "200"));

    std::string body_block;
    const std::string inject = param("inject", "");
    auto lines_for = [&](std::uint64_t i) {
      std::string token = make_token(random, dash);
      if (i == 1 && !inject.empty()) {
        if (inject == "nul") token = token.substr(0, 10) + std::string(1, '\0') + token.substr(11);
        if (inject == "invalid-utf8") token = token.substr(0, 10) + "\xff\xfe\xc3" + token.substr(13);
        if (inject == "huge-line") token = std::string(std::size_t{1} << 20, 'H');
        if (inject == "blank") token.clear();
        if (inject == "crlf") token += "\r";
      }
      std::string text = token + "\n";
      if (i < duplicates) text += token + "\n";
      return text;
    };

    response.setStatus(HTTPResponse::HTTP_OK);
    response.setContentType("text/plain; charset=utf-8");
    if (mode == "truncate-length") {
      std::string body;
      for (std::uint64_t i = 0; i < count; ++i) body += lines_for(i);
      const std::size_t cut = body.size() / 2 + (body[body.size() / 2] == '\n' ? 1 : 0);
      response.setContentLength64(static_cast<Poco::UInt64>(body.size()));
      std::ostream& out = response.send();
      out.write(body.data(), static_cast<std::streamsize>(cut));
      out.flush();
      return;  // keep-alive is off: the connection closes short of Content-Length
    }
    response.setChunkedTransferEncoding(true);
    std::ostream& out = response.send();
    auto chunk = [&](const std::string& data) { out.write(data.data(), static_cast<std::streamsize>(data.size())); };
    const std::uint64_t stop_at = mode == "truncate" ? count / 2 : count;
    for (std::uint64_t i = 0; i < stop_at; ++i) {
      body_block += lines_for(i);
      if (body_block.size() >= 16384 || (mode == "slow" && i % 10 == 9)) {
        chunk(body_block);
        body_block.clear();
        if (mode == "slow") {
          out.flush();
          std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        }
      }
    }
    if (mode == "truncate") {
      body_block += make_token(random, dash).substr(0, 11);  // half a line, then the peer vanishes
      chunk(body_block);
      out.flush();
      // Close our side before Poco can write the terminating chunk.
      static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket().shutdownSend();
      return;
    }
    chunk(body_block);
    out.flush();
  }

 private:
  static void plain(Poco::Net::HTTPServerResponse& response, HTTPResponse::HTTPStatus status,
                    const std::string& text, bool set_type = true) {
    response.setStatusAndReason(status);
    if (set_type) response.setContentType("text/plain; charset=utf-8");
    response.setContentLength(static_cast<std::streamsize>(text.size()));
    response.send() << text;
  }

  const Options& options_;
  Counters& counters_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit Factory(const Options& options) : options_(options) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new TokenHandler(options_, counters_);
  }

 private:
  const Options& options_;
  Counters counters_;
};

void usage() {
  std::cerr << "usage: token-source [--bind ADDR] [--port N] [--mode MODE] [--max N] [--seed N]\n"
               "                    [--tls-cert FILE --tls-key FILE]\n"
               "Prints the port it listens on, then serves until SIGTERM or SIGINT.\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "token-source: " << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--bind") options.bind = value();
    else if (arg == "--port") options.port = static_cast<Poco::UInt16>(std::stoul(value()));
    else if (arg == "--mode") options.mode = value();
    else if (arg == "--max") options.max = std::stoull(value());
    else if (arg == "--seed") { options.seed = std::stoull(value()); options.seeded = true; }
    else if (arg == "--tls-cert") options.tls_cert = value();
    else if (arg == "--tls-key") options.tls_key = value();
    else if (arg == "--help" || arg == "-h") { usage(); return 0; }
    else { std::cerr << "token-source: unknown argument " << arg << "\n"; usage(); return 2; }
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // inherited by the server threads

  try {
    const Poco::Net::SocketAddress address(options.bind, options.port);
    std::unique_ptr<Poco::Net::ServerSocket> socket;
    if (!options.tls_cert.empty()) {
      Poco::Net::Context::Ptr context(new Poco::Net::Context(
          Poco::Net::Context::TLS_SERVER_USE, options.tls_key, options.tls_cert, "",
          Poco::Net::Context::VERIFY_NONE));
      socket = std::make_unique<Poco::Net::SecureServerSocket>(address, 64, context);
    } else {
      socket = std::make_unique<Poco::Net::ServerSocket>(address, 64);
    }
    auto params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(16);
    params->setKeepAlive(false);
    Poco::Net::HTTPServer server(new Factory(options), *socket, params);
    server.start();
    std::cout << socket->address().port() << std::endl;
    int received = 0;
    sigwait(&signals, &received);
    server.stopAll(true);
  } catch (const Poco::Exception& e) {
    std::cerr << "token-source: " << e.displayText() << "\n";
    return 1;
  }
  return 0;
}
