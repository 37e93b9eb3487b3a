// A plugin whose descriptor claims a future SDK ABI version: the host must refuse it before
// touching anything past the descriptor's stable header.
#include "etl/sdk.hpp"

namespace {
const etl::sdk::PluginDescriptor kDescriptor{
    etl::sdk::kDescriptorMagic, etl::sdk::kAbiVersion + 41, "test-future", etl::sdk::PluginKind::source, "9.9.9",
    "Built for another SDK", "{}", nullptr, nullptr, nullptr};
}  // namespace

ETL_PLUGIN_DESCRIPTOR(kDescriptor);
