// test-counter: yields `count` records {field: "1"}, {field: "2"}, ...; can fail on request.
#include "etl/sdk.hpp"

namespace {

class CounterSource final : public etl::sdk::Source {
 public:
  explicit CounterSource(const etl::sdk::PluginArgs& args) {
    const auto config = etl::sdk::parse_config(args);
    count_ = config.at("count").get<std::uint64_t>();
    field_ = config.at("field").get<std::string>();
    fail_after_ = config.at("fail_after").get<std::uint64_t>();
  }
  void open() override {}
  std::vector<std::string> fields() const override { return {field_}; }
  std::optional<std::uint64_t> expected() const override { return count_; }
  bool read(etl::sdk::Batch& batch, std::size_t max_records) override {
    while (batch.size() < max_records && next_ < count_) {
      if (fail_after_ != 0 && next_ == fail_after_) throw etl::sdk::PluginError("counter broke after " + std::to_string(next_));
      etl::sdk::Record record;
      record.set(field_, std::to_string(++next_));
      batch.push_back(std::move(record));
    }
    return next_ < count_;
  }
  etl::sdk::SourceStats stats() const override { return {count_, next_}; }

 private:
  std::uint64_t count_ = 0;
  std::uint64_t next_ = 0;
  std::uint64_t fail_after_ = 0;
  std::string field_;
};

const etl::sdk::PluginDescriptor kDescriptor{
    etl::sdk::kDescriptorMagic, etl::sdk::kAbiVersion, "test-counter", etl::sdk::PluginKind::source, "0.0.1",
    "Counts from 1 (tests only)",
    R"({"type": "object", "additionalProperties": false, "properties": {
          "count": {"type": "integer", "minimum": 0, "default": 3},
          "field": {"type": "string", "default": "n"},
          "fail_after": {"type": "integer", "minimum": 0, "default": 0}}})",
    &etl::sdk::make_source<CounterSource>, nullptr, nullptr};

}  // namespace

ETL_PLUGIN_DESCRIPTOR(kDescriptor);
