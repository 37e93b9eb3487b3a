// customer-api: the goquiz integrator's third-party API, for local runs, tests and benchmarks.
// POST /customers takes {"id", "name", "email", "phone"} (all strings) and answers 200 with the
// stored customer; a body without them is 422. Each accepted customer is appended to the ledger
// file (--ledger, one JSON line per customer, written before the answer), so that what the API
// received is countable by ID even across a kill and a restart. A request with an
// Idempotency-Key it has seen before is answered 200 again without being stored twice, as a
// real API would, and counted as a replay (a ledger line with "replay": true). --unavailable SECONDS answers 503 (with
// Retry-After: 1) for that long after start: "the API is down". --hang-after N receives requests
// after N accepted customers and never answers them (in the ledger as "hung"). GET /stats counts.
//   customer-api [--bind ADDR] [--port N] [--ledger FILE] [--unavailable SECONDS]
// Prints the port it listens on; SIGTERM or SIGINT end it.

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <nlohmann/json.hpp>

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string bind = "127.0.0.1";
  Poco::UInt16 port = 0;
  std::string ledger;
  double unavailable_seconds = 0;
  /// After this many accepted customers, requests are received (counted, in the ledger as
  /// "hung") and never answered: an API that hangs. Negative: never.
  long hang_after = -1;
};

std::atomic<bool> g_stopping{false};

/// What the API has accepted: kept in memory and, when a ledger file is given, on disk.
class Store {
 public:
  explicit Store(const std::string& ledger) {
    if (ledger.empty()) return;
    std::ifstream previous(ledger);
    for (std::string line; std::getline(previous, line);) {
      if (line.empty()) continue;
      const json entry = json::parse(line, nullptr, false);
      if (entry.is_object() && entry.contains("key")) keys_.insert(entry.at("key").get<std::string>());
    }
    ledger_.open(ledger, std::ios::app);
  }

  /// False when `key` was accepted before (a replay).
  bool accept(const json& customer, const std::string& key) {
    std::lock_guard lock(mutex_);
    ++requests_;
    if (!key.empty() && !keys_.insert(key).second) {
      ++replays_;
      if (ledger_.is_open()) {
        ledger_ << json{{"key", key}, {"replay", true}, {"customer", customer}}.dump() << "\n";
        ledger_.flush();
      }
      return false;
    }
    ++accepted_;
    if (ledger_.is_open()) {
      ledger_ << json{{"key", key}, {"customer", customer}}.dump() << "\n";
      ledger_.flush();  // in the file before the answer: a kill right after loses nothing
    }
    return true;
  }

  /// A request received and left unanswered (--hang-after).
  void hang(const json& customer, const std::string& key) {
    std::lock_guard lock(mutex_);
    ++requests_;
    ++hung_;
    if (ledger_.is_open()) {
      ledger_ << json{{"key", key}, {"hung", true}, {"customer", customer}}.dump() << "\n";
      ledger_.flush();
    }
  }
  [[nodiscard]] std::uint64_t accepted() {
    std::lock_guard lock(mutex_);
    return accepted_;
  }

  json stats() {
    std::lock_guard lock(mutex_);
    return {{"requests", requests_}, {"accepted", accepted_}, {"replays", replays_}, {"unavailable", unavailable_}, {"hung", hung_}};
  }
  void count_unavailable() {
    std::lock_guard lock(mutex_);
    ++unavailable_;
  }

 private:
  std::mutex mutex_;
  std::set<std::string> keys_;
  std::ofstream ledger_;
  std::uint64_t requests_ = 0, accepted_ = 0, replays_ = 0, unavailable_ = 0, hung_ = 0;
};

void answer(Poco::Net::HTTPServerResponse& response, int status, const json& body) {
  const std::string text = body.dump();
  response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  response.setContentType("application/json");
  response.setContentLength(static_cast<std::streamsize>(text.size()));
  response.send() << text;
}

class Handler final : public Poco::Net::HTTPRequestHandler {
 public:
  Handler(Store& store, const Options& options, Clock::time_point started)
      : store_(store), options_(options), started_(started) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) override {
    std::string body;
    Poco::StreamCopier::copyToString(request.stream(), body);
    if (request.getMethod() == "GET" && request.getURI() == "/stats") return answer(response, 200, store_.stats());
    if (request.getMethod() != "POST" || request.getURI() != "/customers") {
      return answer(response, 404, {{"error", "POST /customers only"}});
    }
    const std::chrono::duration<double> up = Clock::now() - started_;
    if (up.count() < options_.unavailable_seconds) {
      store_.count_unavailable();
      response.set("Retry-After", "1");
      return answer(response, 503, {{"error", "unavailable"}});
    }
    const json customer = json::parse(body, nullptr, false);
    if (options_.hang_after >= 0 && store_.accepted() >= static_cast<std::uint64_t>(options_.hang_after)) {
      store_.hang(customer, request.get("Idempotency-Key", ""));
      while (!g_stopping) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      return;  // never answered
    }
    for (const char* key : {"id", "name", "email", "phone"}) {
      if (!customer.is_object() || !customer.contains(key) || !customer.at(key).is_string()) {
        return answer(response, 422, {{"error", std::string("the body needs a string \"") + key + "\""}});
      }
    }
    const bool fresh = store_.accept(customer, request.get("Idempotency-Key", ""));
    answer(response, 200, {{"id", customer.at("id")}, {"replay", !fresh}});
  }

 private:
  Store& store_;
  const Options& options_;
  Clock::time_point started_;
};

class Factory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Factory(Store& store, const Options& options) : store_(store), options_(options), started_(Clock::now()) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Handler(store_, options_, started_);
  }

 private:
  Store& store_;
  const Options& options_;
  Clock::time_point started_;
};

void usage() {
  std::cerr << "usage: customer-api [--bind ADDR] [--port N] [--ledger FILE] [--unavailable SECONDS] [--hang-after N]\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    }
    if (i + 1 >= argc) {
      std::cerr << "customer-api: " << arg << " needs a value\n";
      return 2;
    }
    const std::string value = argv[++i];
    try {
      if (arg == "--bind") options.bind = value;
      else if (arg == "--port") options.port = static_cast<Poco::UInt16>(std::stoul(value));
      else if (arg == "--ledger") options.ledger = value;
      else if (arg == "--unavailable") options.unavailable_seconds = std::stod(value);
      else if (arg == "--hang-after") options.hang_after = std::stol(value);
      else {
        std::cerr << "customer-api: unknown argument " << arg << "\n";
        usage();
        return 2;
      }
    } catch (const std::exception&) {
      std::cerr << "customer-api: " << arg << ": not a number: " << value << "\n";
      return 2;
    }
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // inherited by the server threads

  try {
    Store store(options.ledger);
    Poco::Net::ServerSocket socket;
    socket.bind(Poco::Net::SocketAddress(options.bind, options.port), /*reuseAddress=*/true);
    socket.listen(256);
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(32);
    params->setKeepAlive(true);
    Poco::Net::HTTPServer server(new Factory(store, options), socket, params);
    server.start();
    std::cout << socket.address().port() << std::endl;
    int received = 0;
    sigwait(&signals, &received);
    g_stopping = true;
    server.stopAll(true);
  } catch (const Poco::Exception& e) {
    std::cerr << "customer-api: " << e.displayText() << "\n";
    return 1;
  }
  return 0;
}
