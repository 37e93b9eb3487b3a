// test-sink: a sink for testing the host's guarantees. mode:
//   ok         every record ok
//   reject_odd odd values rejected (SQLSTATE 23514), others ok
//   forget     never delivers an outcome
//   duplicate  delivers every outcome twice
//   throw      write() throws on call number `throw_on_write`
//   open_fails open() throws
#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace {

class TestSink final : public etl::sdk::Sink {
 public:
  static std::string config_schema() {
    return R"({"type": "object", "additionalProperties": false, "properties": {
          "mode": {"type": "string", "enum": ["ok", "reject_odd", "forget", "duplicate", "throw", "open_fails"], "default": "ok"},
          "throw_on_write": {"type": "integer", "default": 1}}})";
  }
  explicit TestSink(const etl::sdk::PluginArgs& args) {
    const auto config = etl::sdk::parse_config(args);
    mode_ = config.at("mode").get<std::string>();
    throw_on_write_ = config.at("throw_on_write").get<int>();
  }
  void open(etl::sdk::OutcomeReceiver& outcomes) override {
    if (mode_ == "open_fails") throw etl::sdk::PluginError("cannot reach the test destination");
    outcomes_ = &outcomes;
  }
  void write(std::span<const etl::sdk::Record> records) override {
    if (mode_ == "throw" && ++writes_ == throw_on_write_) throw etl::sdk::PluginError("disk on fire");
    for (const auto& record : records) {
      if (mode_ == "forget") continue;
      const auto value = record.fields().front().value.text().value_or("");
      const bool odd = !value.empty() && (value.back() - '0') % 2 == 1;
      auto outcome = mode_ == "reject_odd" && odd ? etl::sdk::Outcome::rejected("23514", "odd value")
                                                  : etl::sdk::Outcome::ok();
      outcomes_->deliver(record.sequence, outcome);
      if (mode_ == "duplicate") outcomes_->deliver(record.sequence, outcome);
    }
  }
  void finish() override {}

 private:
  std::string mode_;
  int throw_on_write_ = 0;
  int writes_ = 0;
  etl::sdk::OutcomeReceiver* outcomes_ = nullptr;
};

}  // namespace

ETL_PLUGIN(TestSink, "test-sink", "0.0.1", "A sink that misbehaves on request (tests only)");
