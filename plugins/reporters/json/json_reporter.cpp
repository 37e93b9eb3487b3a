// json: one JSON document (or JSON Lines) with every record's outcome and the summary, written
// as records arrive so memory stays flat however long the run.

#include <optional>

#include "etl/sdk.hpp"
#include "report_output.hpp"

namespace etl::plugins::json_reporter {
namespace {

using nlohmann::json;
using reporting::Output;

const std::string kSchema = std::string(R"({
  "type": "object",
  "additionalProperties": false,
  "required": ["path"],
  "properties": {
    "path": {"type": "string", "minLength": 1, "output_file": true,
             "description": "File to write (as PATH.partial until the run ends); missing folders are created."},
    "format": {"type": "string", "enum": ["document", "lines"], "default": "document",
               "description": "document: one JSON object; lines: JSON Lines, one record per line, the summary last."},
    "statuses": )") + reporting::kStatusesSchema + R"(
  }
})";

class JsonReporter final : public sdk::Reporter {
 public:
  explicit JsonReporter(const sdk::PluginArgs& args) : filter_(sdk::parse_config(args).at("statuses")) {
    const json config = sdk::parse_config(args);
    path_ = config.at("path").get<std::string>();
    lines_ = config.at("format").get<std::string>() == "lines";
  }

  void open(const sdk::RunInfo& run) override {
    output_.emplace(Output::file(path_));
    pipeline_ = run.pipeline;
    if (!lines_) {
      output_->write("{\"pipeline\": " + json(run.pipeline).dump() + ",\n \"records\": [");
    }
  }

  void record(const sdk::Record& record, const sdk::Outcome& outcome) override {
    if (!filter_.keeps(outcome.status)) return;
    json item = json::object();
    for (const auto& field : record.fields()) {
      item[field.name] = field.value ? json(*field.value) : json(nullptr);
    }
    item["status"] = sdk::to_string(outcome.status);
    item["sqlstate"] = outcome.sqlstate.empty() ? json(nullptr) : json(outcome.sqlstate);
    item["error"] = outcome.message.empty() ? json(nullptr) : json(outcome.message);
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

  void finish(const sdk::Summary& summary) override {
    if (!output_) return;
    json s = sdk::summary_to_json(summary);
    if (lines_) {
      output_->write(json{{"summary", s}, {"pipeline", pipeline_}}.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
    } else {
      output_->write("\n ],\n \"summary\": " + s.dump(-1, ' ', false, json::error_handler_t::replace) + "\n}\n");
    }
    output_->close();
  }

 private:
  std::string path_;
  bool lines_ = false;
  reporting::StatusFilter filter_;
  std::optional<Output> output_;
  std::string pipeline_;
  bool first_ = true;
};

const sdk::PluginDescriptor kDescriptor{
    sdk::kDescriptorMagic, sdk::kAbiVersion, "json", sdk::PluginKind::reporter, "1.0.0",
    "Writes every record's fields and outcome and the run summary as one JSON document or JSON Lines",
    kSchema.c_str(), nullptr, nullptr, &sdk::make_reporter<JsonReporter>,
};

}  // namespace
}  // namespace etl::plugins::json_reporter

ETL_PLUGIN_DESCRIPTOR(etl::plugins::json_reporter::kDescriptor);
