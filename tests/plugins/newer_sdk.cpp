// test-newer-sdk: a plugin that says it was built with SDK minor version 9 under the same ABI
// (as a plugin built with a later 2.x SDK would): it loads, with a warning naming both versions.
#include "etl/sdk.hpp"

namespace {

struct Config {};

class NewerSink final : public etl::sdk::Sink {
 public:
  static etl::sdk::ConfigMap<Config> config_map() { return {}; }
  NewerSink(Config, etl::sdk::Context&) {}
  void open(etl::sdk::OutcomeReceiver& outcomes) override { outcomes_ = &outcomes; }
  void write(std::span<const etl::sdk::Record> records) override {
    for (const auto& record : records) outcomes_->deliver(record.sequence, etl::sdk::Outcome::ok());
  }
  void finish() override {}

 private:
  etl::sdk::OutcomeReceiver* outcomes_ = nullptr;
};

}  // namespace

// ETL_PLUGIN, with the descriptor's SDK version changed after it is made.
namespace {
const std::string schema_text = etl::sdk::config_detail::schema_text<NewerSink>();
const etl::sdk::PluginDescriptor descriptor_value = [] {
  auto descriptor = etl::sdk::make_descriptor<NewerSink>("test-newer-sdk", "1.0.0", "A sink built with a newer SDK minor version",
                                                         schema_text.c_str());
  descriptor.sdk_version = "2.9.0";
  return descriptor;
}();
}  // namespace
ETL_PLUGIN_DESCRIPTOR(descriptor_value);
