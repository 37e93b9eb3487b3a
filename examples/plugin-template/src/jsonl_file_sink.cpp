// jsonl-file: a sink that appends each record to a JSON Lines file, one object per record.
//
// Small but complete: a config schema with defaults, a ConfigError for what the schema cannot
// check, I/O only from open(), an outcome for every record, errors that name the file.

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <etl/sdk.hpp>

namespace {

using nlohmann::json;

constexpr const char* kSchema = R"({
  "type": "object",
  "additionalProperties": false,
  "required": ["path"],
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "File to write."},
    "append": {"type": "boolean", "default": false, "description": "Append instead of replacing the file."},
    "require_field": {"type": "string", "default": "",
                      "description": "Reject records that lack this field (empty: accept all)."}
  }
})";

class JsonlFileSink final : public etl::sdk::Sink {
 public:
  explicit JsonlFileSink(const etl::sdk::PluginArgs& args) : context_(args.context) {
    const json config = etl::sdk::parse_config(args);
    path_ = config.at("path").get<std::string>();
    append_ = config.at("append").get<bool>();
    require_field_ = config.at("require_field").get<std::string>();
    if (path_.back() == '/') throw etl::sdk::ConfigError("/path", "\"" + path_ + "\" names a folder, not a file");
  }

  ~JsonlFileSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  void open(etl::sdk::OutcomeReceiver& outcomes) override {
    outcomes_ = &outcomes;
    file_ = std::fopen(path_.c_str(), append_ ? "ab" : "wb");
    if (file_ == nullptr) throw etl::sdk::PluginError("cannot open " + path_ + ": " + std::strerror(errno));
    context_.log(etl::sdk::LogLevel::info, "writing records to " + path_);
  }

  void write(std::span<const etl::sdk::Record> records) override {
    for (const auto& record : records) {
      if (!require_field_.empty() && record.find(require_field_) == nullptr) {
        outcomes_->deliver(record.sequence,
                           etl::sdk::Outcome::rejected("", "the record has no field \"" + require_field_ + "\""));
        continue;
      }
      json line = json::object();
      for (const auto& field : record.fields()) line[field.name] = field.value ? json(*field.value) : json(nullptr);
      const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      if (std::fwrite(text.data(), 1, text.size(), file_) != text.size()) {
        outcomes_->deliver(record.sequence, etl::sdk::Outcome::failed("cannot write to " + path_ + ": " + std::strerror(errno)));
        continue;
      }
      outcomes_->deliver(record.sequence, etl::sdk::Outcome::ok());
    }
  }

  void finish() override {
    if (std::fflush(file_) != 0) throw etl::sdk::PluginError("cannot write to " + path_ + ": " + std::strerror(errno));
  }

 private:
  etl::sdk::Context& context_;
  std::string path_;
  bool append_ = false;
  std::string require_field_;
  std::FILE* file_ = nullptr;
  etl::sdk::OutcomeReceiver* outcomes_ = nullptr;
};

const etl::sdk::PluginDescriptor kDescriptor{
    etl::sdk::kDescriptorMagic,
    etl::sdk::kAbiVersion,
    "jsonl-file",
    etl::sdk::PluginKind::sink,
    "1.0.0",
    "Appends each record to a JSON Lines file (example out-of-tree plugin)",
    kSchema,
    nullptr,
    &etl::sdk::make_sink<JsonlFileSink>,
    nullptr,
};

}  // namespace

ETL_PLUGIN_DESCRIPTOR(kDescriptor);
