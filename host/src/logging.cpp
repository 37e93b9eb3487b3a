#include "logging.hpp"

#include "etl/sdk/credentials.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <mutex>

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/Message.h>
#include <Poco/PatternFormatter.h>
#include <Poco/StreamChannel.h>

#include <iostream>

namespace etl::host {

Redactor& Redactor::instance() {
  static Redactor redactor;
  return redactor;
}

void Redactor::add(const std::string& secret) {
  // Very short values would blank out unrelated text ("a", "1") and are not worth hiding.
  if (secret.size() < 3) return;
  std::lock_guard lock(mutex_);
  if (std::find(secrets_.begin(), secrets_.end(), secret) == secrets_.end()) {
    secrets_.push_back(secret);
  }
}

std::string Redactor::redact(std::string text) const {
  // Credentials in URLs ("scheme://user:password@host", "?access_token=...") are hidden
  // whatever printed them.
  text = etl::sdk::redact_urls(std::move(text));
  std::lock_guard lock(mutex_);
  for (const auto& secret : secrets_) {
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

namespace {

class RedactingChannel : public Poco::Channel {
 public:
  explicit RedactingChannel(Poco::AutoPtr<Poco::Channel> next) : next_(std::move(next)) {}
  void log(const Poco::Message& message) override {
    Poco::Message copy(message);
    copy.setText(Redactor::instance().redact(message.getText()));
    next_->log(copy);
  }

 private:
  Poco::AutoPtr<Poco::Channel> next_;
};

}  // namespace

void configure_logging(const std::string& level) {
  Poco::AutoPtr<Poco::StreamChannel> console(new Poco::StreamChannel(std::cerr));
  Poco::AutoPtr<Poco::PatternFormatter> formatter(
      new Poco::PatternFormatter("%Y-%m-%dT%H:%M:%S.%iZ %p %s: %t"));
  Poco::AutoPtr<Poco::FormattingChannel> formatting(new Poco::FormattingChannel(formatter, console));
  Poco::AutoPtr<Poco::Channel> redacting(new RedactingChannel(formatting));
  Poco::Logger::root().setChannel(redacting);
  Poco::Logger::root().setLevel(level);
  // Loggers created before this call keep their old settings; reset them all.
  Poco::Logger::setChannel("", redacting);
  Poco::Logger::setLevel("", Poco::Logger::parseLevel(level));
}

Poco::Logger& host_logger() { return Poco::Logger::get("etl-host"); }

}  // namespace etl::host
