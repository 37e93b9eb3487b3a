#pragma once
// TLS for the plugins' HTTP clients (Poco NetSSL), the same way everywhere: SSL initialised
// once per process, a bad certificate refused rather than asked about on the console, and a
// client context per CA file and verification choice.

#include <mutex>
#include <string>

#include <Poco/Net/Context.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>

namespace etl::plugins::http {

void initialize_tls_once();

/// A client context trusting `ca_file` (PEM), or the system's CAs when it is empty; `verify`
/// false accepts any certificate (tests only).
Poco::Net::Context::Ptr client_context(const std::string& ca_file, bool verify);

}  // namespace etl::plugins::http
