#pragma once
// Logging on stderr through Poco, with every known secret scrubbed from every line.

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <Poco/Logger.h>

namespace etl::host {

/// Secrets (passwords, credentials in URLs, values of schema properties marked secret) that
/// must never be printed. Process-wide because log lines come from every thread and plugin.
class Redactor {
 public:
  static Redactor& instance();
  void add(const std::string& secret);
  /// `text` with every known secret replaced by "***".
  [[nodiscard]] std::string redact(std::string text) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> secrets_;
};

/// Sends Poco logging to stderr with timestamps, at `level` ("debug", "information",
/// "warning", "error"), through the Redactor.
void configure_logging(const std::string& level);

Poco::Logger& host_logger();

}  // namespace etl::host
