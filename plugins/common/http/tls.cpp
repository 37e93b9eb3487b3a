#include "http/tls.hpp"

namespace etl::plugins::http {

void initialize_tls_once() {
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

Poco::Net::Context::Ptr client_context(const std::string& ca_file, bool verify) {
  return new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, ca_file,
                                verify ? Poco::Net::Context::VERIFY_RELAXED : Poco::Net::Context::VERIFY_NONE, 9,
                                /*loadDefaultCAs=*/ca_file.empty());
}

}  // namespace etl::plugins::http
