// stdout: one line per record with its outcome, then a summary.

#include <cstdio>

#include "etl/sdk.hpp"
#include "printable.hpp"
#include "report_output.hpp"

namespace etl::plugins::stdout_reporter {
namespace {

using nlohmann::json;
using reporting::Output;

const std::string kSchema = std::string(R"({
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "fields": {"type": "array", "items": {"type": "string"}, "default": [],
               "description": "Fields to show, in this order; empty: all of the record's fields."},
    "summary": {"type": "boolean", "default": true, "description": "Print the summary at the end."},
    "statuses": )") + reporting::kStatusesSchema + R"(
  }
})";

class StdoutReporter final : public sdk::Reporter {
 public:
  explicit StdoutReporter(const sdk::PluginArgs& args)
      : output_(Output::standard_output()), filter_(sdk::parse_config(args).at("statuses")) {
    const json config = sdk::parse_config(args);
    for (const auto& f : config.at("fields")) fields_.push_back(f.get<std::string>());
    summary_ = config.at("summary").get<bool>();
  }

  void open(const sdk::RunInfo&) override {}

  void record(const sdk::Record& record, const sdk::Outcome& outcome) override {
    if (!filter_.keeps(outcome.status)) return;
    line_.clear();
    line_ += outcome.status == sdk::Status::ok ? "OK  " : "ERR ";
    append_values(record);
    if (outcome.status != sdk::Status::ok) {
      line_ += "  ";
      line_ += sdk::to_string(outcome.status);
      if (!outcome.sqlstate.empty()) {
        line_ += ' ';
        line_ += outcome.sqlstate;
      }
      line_ += ": ";
      append_printable(line_, outcome.message);
    }
    line_ += '\n';
    output_.write(line_);
  }

  void finish(const sdk::Summary& s) override {
    if (summary_) {
      std::string text = "# summary:";
      if (s.requested) text += " requested " + std::to_string(*s.requested) + ",";
      char timing[96];
      std::snprintf(timing, sizeof timing, ", %.2f s, %.1f rows/s", s.seconds, s.rows_per_second);
      text += " received " + std::to_string(s.received) + ", ok " + std::to_string(s.ok) +
              ", rejected " + std::to_string(s.rejected) + ", failed " + std::to_string(s.failed) + timing + "\n";
      if (s.requested && s.received < *s.requested) {
        text += "# note: " + std::to_string(s.received) + " of " + std::to_string(*s.requested) +
                " requested records came from the source\n";
      }
      if (s.commit_unknown != 0) {
        text += "# commit outcome unknown: " + std::to_string(s.commit_unknown) +
                " of the failed rows may be in the table (their connection was lost; see docs/guarantees.md)\n";
      }
      if (!s.completed) {
        text += "# incomplete: ";
        append_printable(text, s.stop_reason);
        text += " (exit code " + std::to_string(s.exit_code) + ")\n";
      }
      output_.write(text);
    }
    output_.flush();
  }

 private:
  void append_values(const sdk::Record& record) {
    auto append = [&](const sdk::Field& field, bool named) {
      if (named) {
        line_ += field.name;
        line_ += '=';
      }
      if (field.value) {
        append_printable(line_, *field.value);
      } else {
        line_ += "NULL";
      }
    };
    if (fields_.empty()) {
      const bool named = record.fields().size() != 1;
      bool first = true;
      for (const auto& field : record.fields()) {
        if (!first) line_ += ' ';
        first = false;
        append(field, named);
      }
      return;
    }
    const bool named = fields_.size() != 1;
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (i != 0) line_ += ' ';
      const sdk::Field* field = record.find(fields_[i]);
      append(field != nullptr ? *field : sdk::Field{fields_[i], std::nullopt}, named);
    }
  }

  Output output_;
  reporting::StatusFilter filter_;
  std::vector<std::string> fields_;
  bool summary_ = true;
  std::string line_;
};

const sdk::PluginDescriptor kDescriptor{
    sdk::kDescriptorMagic, sdk::kAbiVersion, "stdout", sdk::PluginKind::reporter, "1.0.0",
    "Prints one line per record (OK/ERR, values, reason) and a summary on standard output",
    kSchema.c_str(), nullptr, nullptr, &sdk::make_reporter<StdoutReporter>,
};

}  // namespace
}  // namespace etl::plugins::stdout_reporter

ETL_PLUGIN_DESCRIPTOR(etl::plugins::stdout_reporter::kDescriptor);
