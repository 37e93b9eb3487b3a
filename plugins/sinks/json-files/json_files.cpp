// json-files: one JSON file per record, its name from a template of the record's fields
// (task_report_{user_id}_{start}_{end}.json), its content the record as a JSON object or one
// field of it. Each file is written atomically: a temporary file in the same folder, flushed to
// disk, renamed over the name, and the folder flushed — a reader sees the old file or the new
// one, never half of one, even after a crash.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "path_template.hpp"

namespace etl::plugins::json_files {
namespace {

namespace fs = std::filesystem;

struct Config {
  std::string directory = ".";
  std::string path;
  std::string field;
  int indent = 2;
  bool overwrite = true;
  bool fsync = true;
};

class JsonFilesSink final : public sdk::Sink {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("directory", &Config::directory, "The folder files are written into (created if missing).").min_length(1);
    map.key("path", &Config::path,
            "File name template, relative to directory: {field} is the record's field (\"{{\" for a brace), e.g. "
            "\"task_report_{user_id}_{start}_{end}.json\". A value with \"/\" or \"..\" is rejected (path_escape).")
        .required()
        .min_length(1);
    map.key("field", &Config::field,
            "Write only this field: a JSON field as its document, any other as its JSON value. Empty: the whole "
            "record as a JSON object.");
    map.key("indent", &Config::indent, "Spaces per indentation level; -1 writes one line.").minimum(-1).maximum(8);
    map.key("overwrite", &Config::overwrite, "Replace an existing file; false: such a record is rejected (code exists).");
    map.key("fsync", &Config::fsync, "Flush each file and its folder to disk before the record is ok.");
    return map;
  }

  JsonFilesSink(Config config, sdk::Context& context) : config_(std::move(config)), context_(context), template_(make_template(config_.path)) {}

  void open(sdk::OutcomeReceiver& outcomes) override {
    outcomes_ = &outcomes;
    std::error_code ec;
    fs::create_directories(config_.directory, ec);
    if (ec) throw sdk::PluginError(config_.directory + ": cannot create the folder: " + ec.message());
    folder_ = fs::canonical(config_.directory, ec);
    if (ec) throw sdk::PluginError(config_.directory + ": " + ec.message());
  }

  void write(std::span<const sdk::Record> records) override {
    for (const auto& record : records) outcomes_->deliver(record.sequence, write_one(record));
  }

  void finish() override {}

 private:
  static PathTemplate make_template(const std::string& text) {
    try {
      return PathTemplate(text);
    } catch (const std::invalid_argument& e) {
      throw sdk::ConfigError("/path", e.what());
    }
  }

  sdk::Outcome write_one(const sdk::Record& record) {
    auto expanded = template_.expand(record);
    if (auto* refusal = std::get_if<std::pair<std::string, std::string>>(&expanded)) {
      return sdk::Outcome::rejected(refusal->first, refusal->second);
    }
    const fs::path target = folder_ / std::get<std::string>(expanded);
    // Sub-folders of the template are made inside the folder; the name was checked not to leave it.
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) return sdk::Outcome::failed(target.parent_path().string() + ": cannot create the folder: " + ec.message());
    // A symbolic link inside the folder must not lead out of it either.
    const fs::path parent = fs::canonical(target.parent_path(), ec);
    const auto [folder_end, parent_at] = std::mismatch(folder_.begin(), folder_.end(), parent.begin(), parent.end());
    if (ec || folder_end != folder_.end()) {
      return sdk::Outcome::rejected("path_escape", target.string() + " is not inside " + folder_.string());
    }
    if (!config_.overwrite && fs::exists(target, ec)) {
      return sdk::Outcome::rejected("exists", target.string() + " exists (overwrite is off)");
    }
    std::string content;
    try {
      content = render(record);
    } catch (const std::exception& e) {
      return sdk::Outcome::rejected("not_json", e.what());
    }
    if (auto error = write_atomically(target, content)) return sdk::Outcome::failed(target.string() + ": " + *error);
    sdk::Outcome ok = sdk::Outcome::ok();
    ok.detail.push_back(sdk::Field{"path", sdk::Value(target.string())});
    return ok;
  }

  std::string render(const sdk::Record& record) const {
    nlohmann::json document;
    if (config_.field.empty()) {
      document = sdk::to_json_object(record.fields());
    } else {
      const sdk::Field* field = record.find(config_.field);
      if (field == nullptr) throw std::runtime_error("the record has no field \"" + config_.field + "\"");
      document = sdk::to_json_value(field->value);
    }
    return document.dump(config_.indent, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }

  /// Temporary file beside the target, fsync, rename, fsync the folder. Empty on success.
  std::optional<std::string> write_atomically(const fs::path& target, const std::string& content) {
    const fs::path temporary = target.parent_path() / ("." + target.filename().string() + ".tmp-" +
                                                       std::to_string(::getpid()) + "-" + std::to_string(++written_));
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return std::string("cannot create: ") + std::strerror(errno);
    std::size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const std::string error = std::strerror(errno);
        ::close(fd);
        ::unlink(temporary.c_str());
        return "cannot write: " + error;
      }
      done += static_cast<std::size_t>(n);
    }
    if ((config_.fsync && ::fsync(fd) != 0) || ::close(fd) != 0) {
      const std::string error = std::strerror(errno);
      ::unlink(temporary.c_str());
      return "cannot flush: " + error;
    }
    if (::rename(temporary.c_str(), target.c_str()) != 0) {
      const std::string error = std::strerror(errno);
      ::unlink(temporary.c_str());
      return "cannot rename into place: " + error;
    }
    if (config_.fsync) {
      const int folder = ::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (folder >= 0) {
        ::fsync(folder);
        ::close(folder);
      }
    }
    return std::nullopt;
  }

  Config config_;
  sdk::Context& context_;
  PathTemplate template_;
  fs::path folder_;
  sdk::OutcomeReceiver* outcomes_ = nullptr;
  std::uint64_t written_ = 0;
};

}  // namespace
}  // namespace etl::plugins::json_files

ETL_PLUGIN(etl::plugins::json_files::JsonFilesSink, "json-files", "1.0.0",
           "One JSON file per record, named from its fields, written atomically inside one folder");
