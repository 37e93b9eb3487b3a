// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Versions of the etl-host plugin SDK.
///
/// Two numbers matter to a plugin author:
///  - the SDK *semantic* version (ETL_SDK_VERSION_*): documentation and packaging;
///  - the SDK *ABI* version (etl::sdk::kAbiVersion): bumped whenever a change to these
///    headers would break an already compiled plugin (a changed class layout, a new or
///    reordered virtual function, a changed signature). The host refuses to load a plugin
///    whose descriptor names a different ABI version, and says both numbers.

#include <cstdint>

#define ETL_SDK_VERSION_MAJOR 2
#define ETL_SDK_VERSION_MINOR 2
#define ETL_SDK_VERSION_PATCH 0
#define ETL_SDK_VERSION_STRING "2.2.0"

/// The ABI version as a preprocessor token, so it can be pasted into the inline namespace.
#define ETL_SDK_ABI_VERSION 2

// The C++ types live in an inline namespace named after the ABI version, so two SDK
// generations can never be silently mixed at link time: their mangled names differ.
#define ETL_SDK_ABI_NAMESPACE_PASTE(v) abi_v##v
#define ETL_SDK_ABI_NAMESPACE_NAME(v) ETL_SDK_ABI_NAMESPACE_PASTE(v)
#define ETL_SDK_ABI_NAMESPACE ETL_SDK_ABI_NAMESPACE_NAME(ETL_SDK_ABI_VERSION)

/// Plugins are built with hidden visibility; the SDK's polymorphic types keep default visibility
/// so their type information is one and the same in the host and every plugin (exceptions
/// thrown by a plugin are then caught by type in the host).
#define ETL_SDK_API __attribute__((visibility("default")))

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// ABI version this translation unit was compiled against.
inline constexpr std::uint32_t kAbiVersion = ETL_SDK_ABI_VERSION;

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
