// ConnectionPool over real sockets on loopback, with a handler that answers 200 at once.

#include "connection_pool.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/StreamCopier.h>

namespace etl::plugins::http_server {
namespace {

using namespace std::chrono_literals;

class Answer final : public Poco::Net::HTTPRequestHandler {
 public:
  void handleRequest(Poco::Net::HTTPServerRequest&, Poco::Net::HTTPServerResponse& response) override {
    response.setContentLength(2);
    response.send() << "ok";
  }
};

class AnswerFactory final : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Poco::Net::HTTPRequestHandler* createRequestHandler(const Poco::Net::HTTPServerRequest&) override {
    return new Answer;
  }
};

class Pool : public ::testing::Test {
 protected:
  void start(std::size_t threads) {
    Poco::Net::ServerSocket listener;
    listener.bind(Poco::Net::SocketAddress("127.0.0.1", 0), true);
    listener.listen(64);
    port_ = listener.address().port();
    Poco::Net::HTTPServerParams::Ptr params(new Poco::Net::HTTPServerParams);
    params->setKeepAlive(true);
    params->setKeepAliveTimeout(Poco::Timespan(30, 0));
    pool_ = std::make_unique<ConnectionPool>(listener, params, new AnswerFactory, threads, 16);
    pool_->start();
  }
  /// A keep-alive client session with one request answered on it (false when none came in 3 s).
  std::unique_ptr<Poco::Net::HTTPClientSession> session_with_answer() {
    auto session = std::make_unique<Poco::Net::HTTPClientSession>("127.0.0.1", port_);
    session->setKeepAlive(true);
    session->setTimeout(Poco::Timespan(3, 0));
    if (!ask(*session)) return nullptr;
    return session;
  }
  static bool ask(Poco::Net::HTTPClientSession& session) {
    try {
      Poco::Net::HTTPRequest request("GET", "/", Poco::Net::HTTPMessage::HTTP_1_1);
      request.setKeepAlive(true);
      session.sendRequest(request);
      Poco::Net::HTTPResponse response;
      std::string body;
      Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
      return response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK && body == "ok";
    } catch (const Poco::Exception&) {
      return false;
    }
  }
  bool eventually(const std::function<bool()>& condition) {
    for (auto until = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < until;) {
      if (condition()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return condition();
  }

  Poco::UInt16 port_ = 0;
  std::unique_ptr<ConnectionPool> pool_;
};

// A worker that has gone idle counts once: four connections arriving together each get a
// worker, though only one was idle (it used to take all four, and serve them one after another).
TEST_F(Pool, ConnectionsArrivingTogetherEachGetAWorker) {
  start(8);
  ASSERT_NE(session_with_answer(), nullptr);  // one worker, idle again once that session is gone
  ASSERT_TRUE(eventually([&] { return pool_->open_connections() == 0; }));
  // Four requests sent at once, each on its own keep-alive connection, before any is answered.
  std::vector<std::unique_ptr<Poco::Net::HTTPClientSession>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Poco::Net::HTTPClientSession>("127.0.0.1", port_));
    held.back()->setKeepAlive(true);
    held.back()->setTimeout(Poco::Timespan(3, 0));
    Poco::Net::HTTPRequest request("GET", "/", Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(true);
    held.back()->sendRequest(request);
  }
  for (std::size_t i = 0; i < held.size(); ++i) {
    Poco::Net::HTTPResponse response;
    std::string body;
    try {
      Poco::StreamCopier::copyToString(held[i]->receiveResponse(response), body);
    } catch (const Poco::Exception& e) {
      body = e.displayText();
    }
    EXPECT_EQ(body, "ok") << "connection " << i << " was not served while the others stay open";
  }
  EXPECT_EQ(pool_->open_connections(), 4u);
  for (auto& session : held) EXPECT_TRUE(ask(*session));
}

// A stop closes the listener but serves a connection accepted before it, still waiting for a
// worker (Poco's TCPServer::stop() drops such a connection).
TEST_F(Pool, StopAcceptingServesConnectionsAlreadyAccepted) {
  start(1);
  auto holder = session_with_answer();  // holds the only worker (keep-alive)
  ASSERT_NE(holder, nullptr);
  Poco::Net::HTTPClientSession waiting("127.0.0.1", port_);
  waiting.setTimeout(Poco::Timespan(10, 0));
  Poco::Net::HTTPRequest request("GET", "/", Poco::Net::HTTPMessage::HTTP_1_1);
  waiting.sendRequest(request);  // accepted, queued: no worker is free
  ASSERT_TRUE(eventually([&] { return pool_->open_connections() == 2; }));
  pool_->stop_accepting();
  EXPECT_THROW(Poco::Net::StreamSocket(Poco::Net::SocketAddress("127.0.0.1", port_)), Poco::Exception)
      << "the listener is closed";
  holder.reset();  // frees the worker, which takes the waiting connection
  Poco::Net::HTTPResponse response;
  std::string body;
  Poco::StreamCopier::copyToString(waiting.receiveResponse(response), body);
  EXPECT_EQ(response.getStatus(), Poco::Net::HTTPResponse::HTTP_OK);
  EXPECT_EQ(body, "ok");
}

// close() ends connections idle in keep-alive instead of waiting for their timeout (30 s here).
TEST_F(Pool, CloseEndsIdleKeepAliveConnections) {
  start(4);
  auto idle = session_with_answer();
  ASSERT_NE(idle, nullptr);
  const auto began = std::chrono::steady_clock::now();
  pool_->close();
  EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
  EXPECT_EQ(pool_->open_connections(), 0u);
}

}  // namespace
}  // namespace etl::plugins::http_server
