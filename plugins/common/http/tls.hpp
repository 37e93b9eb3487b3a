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

inline void initialize_tls_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    Poco::Net::initializeSSL();
    // Without a handler, Poco would ask on the console what to do about a bad certificate.
    Poco::Net::SSLManager::InvalidCertificateHandlerPtr reject(new Poco::Net::RejectCertificateHandler(false));
    Poco::Net::Context::Ptr context(
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "", Poco::Net::Context::VERIFY_RELAXED, 9, true));
    Poco::Net::SSLManager::instance().initializeClient(nullptr, reject, context);
  });
}

/// A client context trusting `ca_file` (PEM), or the system's CAs when it is empty; `verify`
/// false accepts any certificate (tests only).
inline Poco::Net::Context::Ptr client_context(const std::string& ca_file, bool verify) {
  return new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, ca_file,
                                verify ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE, 9,
                                /*loadDefaultCAs=*/ca_file.empty());
}

}  // namespace etl::plugins::http
