// json: one JSON document (or JSON Lines) with every record's outcome and the summary, written
// as records arrive so memory stays flat however long the run.

#include <optional>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "report_output.hpp"

namespace etl::plugins::json_reporter {
namespace {

using nlohmann::json;
using reporting::Output;

/// The report's layout, in the file as "layout": 2 puts each record's fields under "record"
/// (layout 1, etl-host 2.1 and before, mixed them with the outcome's keys).
constexpr int kLayout = 2;

struct Config {
  std::string path;
  std::string format = "document";
  std::vector<std::string> statuses{"ok", "dropped", "rejected", "failed"};
};

class JsonReporter final : public sdk::Reporter, public sdk::FlushesReports {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    reporting::declare_output_path(map, &Config::path);
    map.key("format", &Config::format,
            "document: one JSON object; lines: JSON Lines, one record per line, the summary last.")
        .one_of({"document", "lines"});
    reporting::declare_statuses(map, &Config::statuses);
    return map;
  }

  JsonReporter(Config config, sdk::Context&)
      : config_(std::move(config)), lines_(config_.format == "lines"), filter_(config_.statuses) {}

  void open(const sdk::RunInfo& run) override {
    output_.emplace(Output::file(config_.path));
    pipeline_ = run.pipeline;
    if (!lines_) {
      output_->write("{\"pipeline\": " + json(run.pipeline).dump() + ", \"layout\": " + std::to_string(kLayout) +
                     ",\n \"records\": [");
    }
  }

  void record(const sdk::Record& record, const sdk::Outcome& outcome) override {
    if (!filter_.keeps(outcome)) return;
    // Layout 2: the outcome's parts (null when empty), and the record's fields under "record",
    // so that no field name (a record's own "status") can hide a part of the outcome.
    json item = json::object();
    item["status"] = outcome.status_word();
    item["stage"] = sdk::to_string(outcome.stage);
    item["code"] = outcome.code.empty() ? json(nullptr) : json(outcome.code);
    item["error"] = outcome.message.empty() ? json(nullptr) : json(outcome.message);
    item["origin"] = record.origin.empty() ? json(nullptr) : json(record.origin);
    item["detail"] = outcome.detail.empty() ? json(nullptr) : sdk::to_json_object(outcome.detail);
    item["record"] = sdk::to_json_object(record.fields());
    // Invalid UTF-8 from the source must not make the report unreadable.
    std::string text = item.dump(-1, ' ', false, json::error_handler_t::replace);
    if (lines_) {
      text += '\n';
    } else {
      text.insert(0, first_ ? "\n  " : ",\n  ");
    }
    first_ = false;
    output_->write(text);
  }

  void flush() override { if (output_) output_->sync(); }

  void finish(const sdk::Summary& summary) override {
    if (!output_) return;
    json s = sdk::summary_to_json(summary);
    if (lines_) {
      output_->write(json{{"summary", s}, {"pipeline", pipeline_}, {"layout", kLayout}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    } else {
      output_->write("\n ],\n \"summary\": " + s.dump(-1, ' ', false, json::error_handler_t::replace) + "\n}\n");
    }
    output_->close();
  }

 private:
  Config config_;
  bool lines_ = false;
  reporting::StatusFilter filter_;
  std::optional<Output> output_;
  std::string pipeline_;
  bool first_ = true;
};

}  // namespace
}  // namespace etl::plugins::json_reporter

ETL_PLUGIN(etl::plugins::json_reporter::JsonReporter, "json", "3.0.0",
           "Writes every record's fields and outcome and the run summary as one JSON document or JSON Lines");
