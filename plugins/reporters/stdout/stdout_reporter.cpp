// stdout: one line per record with its outcome, then a summary.

#include <cstdio>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "printable.hpp"
#include "report_output.hpp"

namespace etl::plugins::stdout_reporter {
namespace {

using nlohmann::json;
using reporting::Output;

struct Config {
  std::vector<std::string> fields;
  bool summary = true;
  std::vector<std::string> statuses{"ok", "dropped", "rejected", "failed"};
};

class StdoutReporter final : public sdk::Reporter, public sdk::FlushesReports {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("fields", &Config::fields, "Fields to show, in this order; empty: all of the record's fields.");
    map.key("summary", &Config::summary, "Print the summary at the end.");
    reporting::declare_statuses(map, &Config::statuses);
    return map;
  }

  StdoutReporter(Config config, sdk::Context&)
      : output_(Output::standard_output()),
        filter_(config.statuses),
        fields_(std::move(config.fields)),
        summary_(config.summary) {}

  void open(const sdk::RunInfo&) override {}

  void record(const sdk::Record& record, const sdk::Outcome& outcome) override {
    if (!filter_.keeps(outcome)) return;
    line_.clear();
    const bool dropped = outcome.is_dropped();
    line_ += dropped ? "DROP" : outcome.status == sdk::Status::ok ? "OK  " : "ERR ";
    append_values(record);
    if (outcome.status != sdk::Status::ok || dropped) {
      line_ += "  ";
      line_ += outcome.status_word();
      if (outcome.stage != sdk::Stage::sink) {
        line_ += " at ";
        line_ += sdk::to_string(outcome.stage);
      }
      if (!outcome.code.empty() && outcome.code != outcome.status_word()) {
        line_ += ' ';
        append_printable(line_, outcome.code);
      }
      if (!outcome.message.empty() || !dropped) {
        line_ += ": ";
        append_printable(line_, outcome.message);
      }
      if (!record.origin.empty()) {
        line_ += " (";
        append_printable(line_, record.origin);
        line_ += ')';
      }
    }
    line_ += '\n';
    output_.write(line_);
  }

  void flush() override { output_.sync(); }

  void finish(const sdk::Summary& s) override {
    if (summary_) {
      std::string text = "# summary:";
      if (s.requested) text += " requested " + std::to_string(*s.requested) + ",";
      char timing[96];
      std::snprintf(timing, sizeof timing, ", %.2f s, %.1f rows/s", s.seconds, s.rows_per_second);
      const std::uint64_t dropped = sdk::has_member(s, &sdk::Summary::dropped) ? s.dropped : 0;
      text += " received " + std::to_string(s.received) + ", ok " + std::to_string(s.ok) +
              (dropped != 0 ? ", dropped " + std::to_string(dropped) : std::string()) +
              ", rejected " + std::to_string(s.rejected) + by_stage(s) + ", failed " + std::to_string(s.failed) + timing + "\n";
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
  static std::string by_stage(const sdk::Summary& s) {
    if (s.rejected_at_source == 0 && s.rejected_at_transform == 0) return {};
    return " (source " + std::to_string(s.rejected_at_source) + ", transform " + std::to_string(s.rejected_at_transform) +
           ", sink " + std::to_string(s.rejected_at_sink) + ")";
  }

  void append_values(const sdk::Record& record) {
    auto append = [&](const sdk::Field& field, bool named) {
      if (named) {
        line_ += field.name;
        line_ += '=';
      }
      if (const auto view = field.value.text_view()) {
        append_printable(line_, *view);
      } else if (const auto text = field.value.text()) {
        append_printable(line_, *text);
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
      append(field != nullptr ? *field : sdk::Field{fields_[i], sdk::Value()}, named);
    }
  }

  Output output_;
  reporting::StatusFilter filter_;
  std::vector<std::string> fields_;
  bool summary_ = true;
  std::string line_;
};

}  // namespace
}  // namespace etl::plugins::stdout_reporter

ETL_PLUGIN(etl::plugins::stdout_reporter::StdoutReporter, "stdout", "2.0.0",
           "Prints one line per record (OK/DROP/ERR, values, reason) and a summary on standard output");
