// null: every record is ok at once. For trying a source or transforms, and for measuring them
// without a destination's cost.

#include "etl/sdk.hpp"

namespace etl::plugins::null_sink {
namespace {

struct Config {};

class NullSink final : public sdk::Sink {
 public:
  static sdk::ConfigMap<Config> config_map() { return {}; }
  NullSink(Config, sdk::Context&) {}

  void open(sdk::OutcomeReceiver& outcomes) override { outcomes_ = &outcomes; }
  void write(std::span<const sdk::Record> records) override {
    for (const auto& record : records) outcomes_->deliver(record.sequence, sdk::Outcome::ok());
  }
  void finish() override {}

 private:
  sdk::OutcomeReceiver* outcomes_ = nullptr;
};

}  // namespace
}  // namespace etl::plugins::null_sink

ETL_PLUGIN(etl::plugins::null_sink::NullSink, "null", "1.0.0", "Accepts every record as ok and writes nothing");
