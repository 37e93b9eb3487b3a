// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Telling credentials by their names, so that every plugin and the host hide the same things.
///
/// Header-only and plugin-local: nothing here crosses the plugin boundary, so it is not part
/// of the ABI (see sdk/abi-check).

#include <cctype>
#include <string>
#include <string_view>

#include "etl/sdk/version.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// Whether a query parameter or header of this name carries a credential: its name contains
/// token, key, secret, password, passwd, pwd, auth, signature, sig, credential or session
/// (any case). Errs on the side of hiding: "api_key", "X-Auth-Token" and "sessionid" all are.
inline bool is_credential_name(std::string_view name) {
  std::string lower;
  lower.reserve(name.size());
  for (const char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const std::string_view word : {"token", "key", "secret", "password", "passwd", "pwd", "auth", "signature",
                                      "sig", "credential", "session"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

/// `text` with the credentials of every URL in it replaced by ***: the user info
/// ("https://user:password@host") and the values of credential-like query parameters
/// ("?access_token=...", see is_credential_name). Text that is no URL passes unchanged.
inline std::string redact_urls(std::string text) {
  for (auto scheme = text.find("://"); scheme != std::string::npos; scheme = text.find("://", scheme + 3)) {
    const std::size_t start = scheme + 3;
    const auto authority_end = text.find_first_of("/?# \t\n\"'", start);
    const auto at = text.rfind('@', authority_end == std::string::npos ? text.size() - 1 : authority_end - 1);
    if (at != std::string::npos && at >= start && (authority_end == std::string::npos || at < authority_end) &&
        text.compare(start, at - start, "***") != 0) {
      text.replace(start, at - start, "***");
    }
    const auto url_end = text.find_first_of(" \t\n\"'<>", start);
    std::size_t end = url_end == std::string::npos ? text.size() : url_end;
    const auto query = text.find('?', start);
    if (query == std::string::npos || query >= end) continue;
    for (std::size_t item = query + 1; item < end;) {
      auto next = text.find_first_of("&#", item);
      if (next == std::string::npos || next > end) next = end;
      const auto equals = text.find('=', item);
      if (equals != std::string::npos && equals < next &&
          is_credential_name(std::string_view(text).substr(item, equals - item)) &&
          text.compare(equals + 1, next - equals - 1, "***") != 0) {
        const std::size_t length = next - equals - 1;
        text.replace(equals + 1, length, "***");
        end = end - length + 3;
        next = equals + 1 + 3;
      }
      if (next < text.size() && text[next] == '#') break;
      item = next + 1;
    }
  }
  return text;
}

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
