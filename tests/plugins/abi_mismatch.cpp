// A plugin built for a future SDK ABI (42). Its ELF marker section says so, and the host must
// refuse it from the file alone: should the library ever be loaded, its static initializer
// aborts the process and the test fails loudly.
#include <cstdlib>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace {

struct AbortIfLoaded {
  AbortIfLoaded() { std::abort(); }
} abort_if_loaded;

#ifndef TEST_ABI
#define TEST_ABI 42
#endif
#define TEST_STRINGIFY2(x) #x
#define TEST_STRINGIFY(x) TEST_STRINGIFY2(x)

// Only the stable header (magic, ABI version, name) is the same in every ABI.
const etl::sdk::PluginDescriptor kDescriptor{
    etl::sdk::kDescriptorMagic, TEST_ABI, "test-abi-" TEST_STRINGIFY(TEST_ABI), sizeof(etl::sdk::PluginDescriptor),
    etl::sdk::PluginKind::source, "9.9.9", "9.9.9", "Built for another SDK", "{}", nullptr, nullptr, nullptr, nullptr};

}  // namespace

extern "C" __attribute__((used, section("etl_abi_v" TEST_STRINGIFY(TEST_ABI)))) const char etl_plugin_abi_marker[] = "etl-host plugin";
extern "C" __attribute__((visibility("default"))) const etl::sdk::PluginDescriptor* etl_plugin_descriptor;
const etl::sdk::PluginDescriptor* etl_plugin_descriptor = &kDescriptor;
