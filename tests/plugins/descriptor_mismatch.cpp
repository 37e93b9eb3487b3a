// A library whose marker section claims the current ABI but whose descriptor claims another:
// the host's second check, on the descriptor's stable header, must refuse it.
#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace {
const etl::sdk::PluginDescriptor kDescriptor{
    etl::sdk::kDescriptorMagic, etl::sdk::kAbiVersion + 6, "test-inconsistent", sizeof(etl::sdk::PluginDescriptor),
    etl::sdk::PluginKind::source, ETL_SDK_VERSION_STRING, "0.0.1", "Descriptor disagrees with its marker", "{}",
    nullptr, nullptr, nullptr, nullptr};
}  // namespace

ETL_PLUGIN_DESCRIPTOR(kDescriptor);
