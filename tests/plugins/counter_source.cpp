// test-counter: yields `count` records {field: "1"}, {field: "2"}, ...; can fail on request,
// refuse every `refuse_every`-th value as bad input, and write each acknowledgement it gets to
// `ack_file` ("SEQUENCE STATUS CODE" per line).
#include <fstream>
#include <mutex>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace {

class CounterSource final : public etl::sdk::Source {
 public:
  // The 0.x way: a schema as JSON text and a constructor from PluginArgs (still supported).
  static std::string config_schema() {
    return R"({"type": "object", "additionalProperties": false, "properties": {
          "count": {"type": "integer", "minimum": 0, "default": 3},
          "field": {"type": "string", "default": "n"},
          "fail_after": {"type": "integer", "minimum": 0, "default": 0},
          "refuse_every": {"type": "integer", "minimum": 0, "default": 0},
          "ack_file": {"type": "string", "default": ""}}})";
  }
  explicit CounterSource(const etl::sdk::PluginArgs& args) {
    const auto config = etl::sdk::parse_config(args);
    count_ = config.at("count").get<std::uint64_t>();
    field_ = config.at("field").get<std::string>();
    fail_after_ = config.at("fail_after").get<std::uint64_t>();
    refuse_every_ = config.at("refuse_every").get<std::uint64_t>();
    ack_file_ = config.at("ack_file").get<std::string>();
  }
  void open() override {
    if (!ack_file_.empty()) acks_.open(ack_file_);
  }
  std::vector<std::string> fields() const override { return {field_}; }
  std::optional<std::uint64_t> expected() const override { return count_; }
  bool read(etl::sdk::Batch& batch, std::size_t max_records) override {
    while (batch.size() < max_records && next_ < count_) {
      if (fail_after_ != 0 && next_ == fail_after_) throw etl::sdk::PluginError("counter broke after " + std::to_string(next_));
      ++next_;
      if (refuse_every_ != 0 && next_ % refuse_every_ == 0) {
        batch.push_back(etl::sdk::Record::refuse_input("counter:" + std::to_string(next_), std::to_string(next_),
                                                       "divisible", "divisible by " + std::to_string(refuse_every_)));
        continue;
      }
      etl::sdk::Record record;
      record.set(field_, std::to_string(next_));
      batch.push_back(std::move(record));
    }
    return next_ < count_;
  }
  etl::sdk::SourceStats stats() const override {
    etl::sdk::SourceStats stats;
    stats.requested = count_;
    stats.received = next_;
    return stats;
  }
  bool wants_acknowledgements() const override { return acks_.is_open(); }
  void acknowledge(std::uint64_t sequence, const etl::sdk::Outcome& outcome) override {
    acks_ << sequence << ' ' << etl::sdk::to_string(outcome.status) << ' ' << (outcome.code.empty() ? "-" : outcome.code)
          << '\n';
    acks_.flush();
  }

 private:
  std::uint64_t count_ = 0;
  std::uint64_t next_ = 0;
  std::uint64_t fail_after_ = 0;
  std::uint64_t refuse_every_ = 0;
  std::string field_;
  std::string ack_file_;
  std::ofstream acks_;
};

}  // namespace

ETL_PLUGIN(CounterSource, "test-counter", "0.0.1", "Counts from 1 (tests only)");
