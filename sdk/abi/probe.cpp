// The ABI probe: a library whose exported functions take every type that crosses the plugin
// boundary, so that libabigail sees their full layout (members, offsets, sizes, virtual
// tables). sdk/abi-check compares it with the recorded ABI (sdk/abi/etl-sdk.abi).
#include "etl/sdk/plugin.hpp"

#define ETL_PROBE extern "C" __attribute__((visibility("default"), used))

namespace sdk = etl::sdk;

ETL_PROBE void etl_abi_probe_data(const sdk::Value*, const sdk::Field*, const sdk::Refusal*, const sdk::Record*,
                                  const sdk::Batch*, const sdk::Outcome*, const sdk::TransformResult*) {}
ETL_PROBE void etl_abi_probe_run(const sdk::PluginArgs*, const sdk::SourceStats*, const sdk::RunInfo*,
                                 const sdk::Summary*, const sdk::PluginDescriptor*) {}
ETL_PROBE void etl_abi_probe_interfaces(sdk::Context*, sdk::Source*, sdk::Transform*, sdk::OutcomeReceiver*,
                                        sdk::Sink*, sdk::Reporter*, sdk::PluginError*, sdk::ConfigError*) {}
ETL_PROBE void etl_abi_probe_since_1_2(sdk::DrainsOnStop*) {}
ETL_PROBE void etl_abi_probe_since_2_1(sdk::Resumable*, sdk::FlushesReports*) {}
ETL_PROBE void etl_abi_probe_since_2_2(sdk::DescribesPosition*) {}
