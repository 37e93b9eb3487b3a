// sequence: a source that yields the integers from `start`, `count` of them, as typed values —
// and refuses those divisible by `refuse_every` as bad input, to show how a source reports
// input it cannot turn into a record.

#include <etl/sdk.hpp>

namespace {

struct Config {
  std::int64_t start = 1;
  std::int64_t count = 10;
  std::string field = "n";
  std::int64_t refuse_every = 0;
};

class SequenceSource final : public etl::sdk::Source {
 public:
  static etl::sdk::ConfigMap<Config> config_map() {
    etl::sdk::ConfigMap<Config> map;
    map.key("start", &Config::start, "First number.");
    map.key("count", &Config::count, "How many numbers.").minimum(0);
    map.key("field", &Config::field, "Field the number goes into.").min_length(1);
    map.key("refuse_every", &Config::refuse_every, "Refuse numbers divisible by this as bad input (0: none).").minimum(0);
    return map;
  }

  SequenceSource(Config config, etl::sdk::Context& context) : config_(std::move(config)), context_(context) {}

  void open() override {}
  std::vector<std::string> fields() const override { return {config_.field}; }
  std::optional<std::uint64_t> expected() const override { return static_cast<std::uint64_t>(config_.count); }

  bool read(etl::sdk::Batch& batch, std::size_t max_records) override {
    while (batch.size() < max_records && done_ < config_.count) {
      if (context_.stop_requested()) return false;
      const std::int64_t value = config_.start + done_++;
      const std::string origin = "sequence:" + std::to_string(done_);
      if (config_.refuse_every != 0 && value % config_.refuse_every == 0) {
        batch.push_back(etl::sdk::Record::refuse_input(origin, std::to_string(value), "sequence.divisible",
                                                       "divisible by " + std::to_string(config_.refuse_every)));
        continue;
      }
      etl::sdk::Record record;
      record.origin = origin;
      record.set(config_.field, etl::sdk::Value(value));
      batch.push_back(std::move(record));
    }
    return done_ < config_.count;
  }

  etl::sdk::SourceStats stats() const override {
    etl::sdk::SourceStats stats;
    stats.requested = static_cast<std::uint64_t>(config_.count);
    stats.received = static_cast<std::uint64_t>(done_);
    return stats;
  }

 private:
  Config config_;
  etl::sdk::Context& context_;
  std::int64_t done_ = 0;
};

}  // namespace

ETL_PLUGIN(SequenceSource, "sequence", "1.0.0", "The integers from start (example out-of-tree source)");
