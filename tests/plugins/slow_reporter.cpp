// test-slow-reporter: sleeps `sleep_ms` per record, then appends "SEQUENCE STATUS" to `path`
// (flushed per line, so a test can watch it grow). Tests only.
#include <chrono>
#include <fstream>
#include <thread>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace {

struct Config {
  std::string path;
  int sleep_ms = 1;
};

class SlowReporter final : public etl::sdk::Reporter {
 public:
  static etl::sdk::ConfigMap<Config> config_map() {
    etl::sdk::ConfigMap<Config> map;
    map.key("path", &Config::path, "File to append to.").required();
    map.key("sleep_ms", &Config::sleep_ms, "Milliseconds to sleep per record.").minimum(0);
    return map;
  }
  SlowReporter(Config config, etl::sdk::Context&) : config_(std::move(config)) {}
  void open(const etl::sdk::RunInfo&) override { out_.open(config_.path); }
  void record(const etl::sdk::Record& record, const etl::sdk::Outcome& outcome) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(config_.sleep_ms));
    out_ << record.sequence << ' ' << etl::sdk::to_string(outcome.status) << '\n';
    out_.flush();
  }
  void finish(const etl::sdk::Summary& summary) override {
    out_ << "# summary " << summary.ok << ' ' << summary.rejected << ' ' << summary.failed << '\n';
    out_.close();
  }

 private:
  Config config_;
  std::ofstream out_;
};

}  // namespace

ETL_PLUGIN(SlowReporter, "test-slow-reporter", "0.0.1", "Sleeps per record (tests only)");
