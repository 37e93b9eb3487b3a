// jsonl-file: a sink that appends each record to a JSON Lines file, one object per record.
//
// Small but complete: config keys declared once (schema, parsing and docs come from that), a
// ConfigError for what the schema cannot check, I/O only from open(), an outcome for every
// record, errors that name the file.

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <etl/sdk.hpp>
#include "etl/sdk/json.hpp"

namespace {

struct Config {
  std::string path;
  bool append = false;
  std::string require_field;
};

class JsonlFileSink final : public etl::sdk::Sink {
 public:
  static etl::sdk::ConfigMap<Config> config_map() {
    etl::sdk::ConfigMap<Config> map;
    map.key("path", &Config::path, "File to write.").required().min_length(1);
    map.key("append", &Config::append, "Append instead of replacing the file.");
    map.key("require_field", &Config::require_field, "Reject records that lack this field (empty: accept all).");
    return map;
  }

  JsonlFileSink(Config config, etl::sdk::Context& context) : config_(std::move(config)), context_(context) {
    if (config_.path.back() == '/') {
      throw etl::sdk::ConfigError("/path", "\"" + config_.path + "\" names a folder, not a file");
    }
  }

  ~JsonlFileSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  void open(etl::sdk::OutcomeReceiver& outcomes) override {
    outcomes_ = &outcomes;
    file_ = std::fopen(config_.path.c_str(), config_.append ? "ab" : "wb");
    if (file_ == nullptr) throw etl::sdk::PluginError("cannot open " + config_.path + ": " + std::strerror(errno));
    context_.log(etl::sdk::LogLevel::info, "writing records to " + config_.path);
  }

  void write(std::span<const etl::sdk::Record> records) override {
    for (const auto& record : records) {
      if (!config_.require_field.empty() && record.find(config_.require_field) == nullptr) {
        outcomes_->deliver(record.sequence, etl::sdk::Outcome::rejected(
                                                "missing_field", "the record has no field \"" + config_.require_field + "\""));
        continue;
      }
      // Typed values keep their JSON type: an integer field is written as a number.
      const std::string text =
          etl::sdk::to_json_object(record.fields()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      if (std::fwrite(text.data(), 1, text.size(), file_) != text.size()) {
        outcomes_->deliver(record.sequence,
                           etl::sdk::Outcome::failed("cannot write to " + config_.path + ": " + std::strerror(errno)));
        continue;
      }
      outcomes_->deliver(record.sequence, etl::sdk::Outcome::ok());
    }
  }

  void finish() override {
    if (std::fflush(file_) != 0) throw etl::sdk::PluginError("cannot write to " + config_.path + ": " + std::strerror(errno));
  }

 private:
  Config config_;
  etl::sdk::Context& context_;
  std::FILE* file_ = nullptr;
  etl::sdk::OutcomeReceiver* outcomes_ = nullptr;
};

}  // namespace

ETL_PLUGIN(JsonlFileSink, "jsonl-file", "1.0.0", "Appends each record to a JSON Lines file (example out-of-tree plugin)");
