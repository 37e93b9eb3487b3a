// csv: every record with its outcome in an RFC 4180 file.

#include <optional>

#include "csv_format.hpp"
#include "etl/sdk.hpp"
#include "report_output.hpp"

namespace etl::plugins::csv {
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
    "header": {"type": "boolean", "default": true, "description": "Write a header row."},
    "statuses": )") + reporting::kStatusesSchema + R"(
  }
})";

class CsvReporter final : public sdk::Reporter {
 public:
  explicit CsvReporter(const sdk::PluginArgs& args) : filter_(sdk::parse_config(args).at("statuses")) {
    const json config = sdk::parse_config(args);
    path_ = config.at("path").get<std::string>();
    header_ = config.at("header").get<bool>();
  }

  void open(const sdk::RunInfo& run) override {
    output_.emplace(Output::file(path_));
    fields_ = run.fields;
    if (!header_) return;
    line_.clear();
    for (const auto& field : fields_) {
      append_field(line_, field);
      line_ += ',';
    }
    line_ += "status,sqlstate,error\r\n";
    output_->write(line_);
  }

  void record(const sdk::Record& record, const sdk::Outcome& outcome) override {
    if (!filter_.keeps(outcome.status)) return;
    line_.clear();
    for (const auto& name : fields_) {
      if (const auto value = record.value(name)) append_field(line_, *value);
      line_ += ',';
    }
    line_ += sdk::to_string(outcome.status);
    line_ += ',';
    append_field(line_, outcome.sqlstate);
    line_ += ',';
    append_field(line_, outcome.message);
    line_ += "\r\n";
    output_->write(line_);
  }

  void finish(const sdk::Summary&) override {
    if (output_) output_->close();
  }

 private:
  std::string path_;
  bool header_ = true;
  reporting::StatusFilter filter_;
  std::optional<Output> output_;
  std::vector<std::string> fields_;
  std::string line_;
};

const sdk::PluginDescriptor kDescriptor{
    sdk::kDescriptorMagic, sdk::kAbiVersion, "csv", sdk::PluginKind::reporter, "1.0.0",
    "Writes every record's fields and outcome (status, sqlstate, error) to an RFC 4180 CSV file",
    kSchema.c_str(), nullptr, nullptr, &sdk::make_reporter<CsvReporter>,
};

}  // namespace
}  // namespace etl::plugins::csv

ETL_PLUGIN_DESCRIPTOR(etl::plugins::csv::kDescriptor);
