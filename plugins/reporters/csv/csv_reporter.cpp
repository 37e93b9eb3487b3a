// csv: every record with its outcome in an RFC 4180 file, or (layout "input") the records alone
// in the form they came in, so that a reject file can be fixed and loaded again.
//
// Report layout 2: the source's declared fields (a field named like an outcome column headed
// record.NAME, so that every header name is one column), then status, stage, code, error,
// origin, detail, and extra: the fields a record has beyond the declared ones, as a JSON object
// (a schemaless source declares none: all its fields are there).

#include <algorithm>
#include <optional>
#include <unordered_set>

#include "csv_format.hpp"
#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "report_output.hpp"

namespace etl::plugins::csv {
namespace {

using reporting::Output;

const std::vector<std::string>& outcome_columns() {
  static const std::vector<std::string> names = {"status", "stage", "code", "error", "origin", "detail", "extra"};
  return names;
}

/// The header of each declared field: its name, or record.NAME while that is taken by an outcome
/// column or another field.
std::vector<std::string> field_headers(const std::vector<std::string>& fields) {
  std::vector<std::string> headers;
  for (const auto& field : fields) {
    std::string header = field;
    const auto taken = [&](const std::string& name) {
      return std::find(outcome_columns().begin(), outcome_columns().end(), name) != outcome_columns().end() ||
             (name != field && std::find(fields.begin(), fields.end(), name) != fields.end()) ||
             std::find(headers.begin(), headers.end(), name) != headers.end();
    };
    while (taken(header)) header = "record." + header;
    headers.push_back(std::move(header));
  }
  return headers;
}

struct Config {
  std::string path;
  bool header = true;
  std::string layout = "report";
  std::vector<std::string> statuses{"ok", "dropped", "rejected", "failed"};
};

class CsvReporter final : public sdk::Reporter, public sdk::FlushesReports {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    reporting::declare_output_path(map, &Config::path);
    map.key("header", &Config::header, "Write a header row.");
    map.key("layout", &Config::layout,
            "report: the source's fields (one named like an outcome column is headed record.NAME), then status, "
            "stage, code, error, origin, detail, and extra (the fields the source did not declare, as a JSON "
            "object). input: the declared fields only, and refused input as the raw text that came in (a reject "
            "file to fix and load again).")
        .one_of({"report", "input"});
    reporting::declare_statuses(map, &Config::statuses);
    return map;
  }

  CsvReporter(Config config, sdk::Context&) : config_(std::move(config)), filter_(config_.statuses) {}

  void open(const sdk::RunInfo& run) override {
    output_.emplace(Output::file(config_.path));
    fields_ = run.fields;
    declared_ = std::unordered_set<std::string>(fields_.begin(), fields_.end());
    input_layout_ = config_.layout == "input";
    if (!config_.header) return;
    line_.clear();
    const std::vector<std::string> headers = input_layout_ ? fields_ : field_headers(fields_);
    for (std::size_t i = 0; i < headers.size(); ++i) {
      if (i != 0) line_ += ',';
      append_field(line_, headers[i]);
    }
    if (!input_layout_) line_ += std::string(fields_.empty() ? "" : ",") + "status,stage,code,error,origin,detail,extra";
    line_ += "\r\n";
    output_->write(line_);
  }

  void record(const sdk::Record& record, const sdk::Outcome& outcome) override {
    if (!filter_.keeps(outcome)) return;
    line_.clear();
    if (input_layout_ && outcome.stage == sdk::Stage::source && outcome.status == sdk::Status::rejected) {
      // Refused input is written as it came, so that fixing it in place makes it loadable.
      if (const auto raw = record.text("raw")) line_ += *raw;
      line_ += "\r\n";
      output_->write(line_);
      return;
    }
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (i != 0) line_ += ',';
      if (const sdk::Value* value = record.get(fields_[i])) {
        if (const auto view = value->text_view()) {
          append_field(line_, *view);
        } else if (const auto text = value->text()) {
          append_field(line_, *text);
        }
      }
    }
    if (!input_layout_) {
      if (!fields_.empty()) line_ += ',';
      line_ += outcome.status_word();
      line_ += ',';
      line_ += sdk::to_string(outcome.stage);
      line_ += ',';
      append_field(line_, outcome.code);
      line_ += ',';
      append_field(line_, outcome.message);
      line_ += ',';
      append_field(line_, record.origin);
      line_ += ',';
      append_field(line_, reporting::detail_text(outcome));
      line_ += ',';
      std::vector<sdk::Field> extra;
      for (const auto& field : record.fields()) {
        if (!declared_.contains(field.name)) extra.push_back(field);
      }
      if (!extra.empty()) {
        append_field(line_, sdk::to_json_object(extra).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
    }
    line_ += "\r\n";
    output_->write(line_);
  }

  void flush() override { if (output_) output_->sync(); }

  void finish(const sdk::Summary&) override {
    if (output_) output_->close();
  }

 private:
  Config config_;
  reporting::StatusFilter filter_;
  bool input_layout_ = false;
  std::optional<Output> output_;
  std::vector<std::string> fields_;
  std::unordered_set<std::string> declared_;
  std::string line_;
};

}  // namespace
}  // namespace etl::plugins::csv

ETL_PLUGIN(etl::plugins::csv::CsvReporter, "csv", "3.0.0",
           "Writes every record's fields and outcome (status, stage, code, error) to an RFC 4180 CSV file");
