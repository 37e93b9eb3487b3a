// file-lines: one record per line of a file or of stdin. Lines that are not UTF-8, or longer
// than max_line_bytes, are refused input (reported at stage source with file:line), and every
// other line still flows.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <chrono>
#include <thread>

#include "etl/sdk.hpp"
#include "files/file_position.hpp"
#include "line_reader.hpp"

namespace etl::plugins::file_lines {
namespace {

struct Config {
  std::string path;
  std::string field = "line";
  std::uint64_t max_line_bytes = 1048576;
  bool skip_empty = false;
  bool check_utf8 = true;
  std::string on_changed = "error";
  bool follow = false;
  double poll_interval = 1;
};

class FileLinesSource final : public sdk::Source, public sdk::Resumable, public sdk::LongRunning {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("path", &Config::path,
            "File to read; `-` reads standard input. A pattern (`logs/*.log`, with * ? [...]) reads every matching "
            "file in name order; with settings.state each file's position is kept, so a file read to its end is not "
            "read again and one that grew is read where it grew.")
        .required()
        .min_length(1);
    map.key("field", &Config::field, "Name of the field each line goes into.").min_length(1);
    map.key("max_line_bytes", &Config::max_line_bytes,
            "Longer lines are refused input (code line_too_long); memory stays bounded by this.")
        .minimum(1);
    map.key("skip_empty", &Config::skip_empty, "Skip empty lines instead of yielding empty records.");
    map.key("check_utf8", &Config::check_utf8, "Refuse lines that are not well-formed UTF-8 (code invalid_utf8).");
    map.key("on_changed", &Config::on_changed,
            "With settings.state: what to do when the file to resume is not the one the position was taken in "
            "(smaller, or its first bytes differ): error (the run does not start) or restart (read it from its "
            "beginning).")
        .one_of({"error", "restart"});
    map.key("follow", &Config::follow,
            "With a pattern as path: after the matching files are read, watch for new ones and read each as it "
            "appears, once it has stopped changing for poll_interval (so move files in whole, or finish writing "
            "them within it), until stopped; the pipeline is then a service. A file read during the run that grows "
            "afterwards is read where it grew on the next run.");
    map.key("poll_interval", &Config::poll_interval, "follow: seconds between looks for new files.").minimum(0.05);
    return map;
  }

  FileLinesSource(Config config, sdk::Context& context) : config_(std::move(config)), context_(context) {
    shown_ = config_.path == "-" ? std::string("stdin") : config_.path;
    if (config_.follow && !pattern_) {
      throw sdk::ConfigError("/follow", "follow watches a pattern for new files: path must be one (e.g. logs/*.log)");
    }
  }

  [[nodiscard]] bool runs_until_stopped() const override { return config_.follow; }
  ~FileLinesSource() override {
    if (fd_ > STDIN_FILENO) ::close(fd_);
  }

  void open() override {
    if (pattern_) {
      pattern_->set_files(files::matching_files(config_.path));
      context_.log(sdk::LogLevel::info, config_.path + ": " + std::to_string(pattern_->files().size()) + " file(s) match" +
                                            (config_.follow ? "; following it for new ones" : ""));
      if (config_.follow) watch_.emplace(config_.path, pattern_->files());
      if (pattern_->files().empty()) return;
      open_input(0);
      return;
    }
    open_input(std::nullopt);
  }

 private:
  /// Opens the file (or a pattern's files()[index]) and goes to its committed position.
  void open_input(std::optional<std::size_t> index) {
    const std::string path = index ? pattern_->files()[*index] : config_.path;
    current_ = index.value_or(0);
    shown_ = path == "-" ? std::string("stdin") : path;
    if (fd_ > STDIN_FILENO) ::close(fd_);
    identity_.reset();
    if (path == "-") {
      fd_ = STDIN_FILENO;
    } else {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd_ < 0) throw sdk::PluginError(path + ": cannot open: " + std::strerror(errno));
      // Only a regular file can be resumed: a pipe cannot be read again.
      if (files::is_regular_file(path)) identity_ = files::FileIdentity::of(path);
    }
    if (index) {
      resume_ = pattern_->committed(*index);
      pattern_->opened(*index, identity_);
    }
    resume_ = files::usable_position(path, shown_, resume_, config_.on_changed == "restart", context_);
    std::uint64_t offset = 0;
    std::uint64_t line = 0;
    if (resume_) {
      if (::lseek(fd_, static_cast<off_t>(resume_->offset), SEEK_SET) < 0) {
        throw sdk::PluginError(shown_ + ": cannot seek to the committed offset " + std::to_string(resume_->offset) + ": " +
                               std::strerror(errno));
      }
      offset = resume_->offset;
      line = resume_->line;
      context_.log(sdk::LogLevel::info, shown_ + ": resuming after line " + std::to_string(line) + " (byte " +
                                            std::to_string(offset) + ")");
    }
    end_ = {offset, line};
    if (index && resume_) pattern_->reached(*index, offset, line);
    reader_.emplace(fd_, static_cast<std::size_t>(config_.max_line_bytes), offset, line);
  }

 public:

  void resume_from(std::string_view position) override {
    files::take_committed(position, config_.path, pattern_ ? &*pattern_ : nullptr, resume_, context_);
  }

  [[nodiscard]] std::string position() const override {
    if (pattern_) return pattern_->text();
    if (!identity_ || end_.offset == 0) return {};
    files::FilePosition position;
    position.offset = end_.offset;
    position.line = end_.line;
    position.identity = *identity_;
    return position.to_json_text();
  }

  [[nodiscard]] std::vector<std::string> fields() const override { return {config_.field}; }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    while (batch.size() < max_records) {
      if (context_.stop_requested()) return false;
      std::optional<LineReader::Line> line;
      try {
        if (reader_) line = reader_->next();  // none: a pattern that matched nothing yet
      } catch (const std::exception& e) {
        throw sdk::PluginError(shown_ + ": " + e.what());
      }
      if (!line) {
        // A pattern goes on with its next file.
        const std::size_t next = reader_ ? current_ + 1 : 0;
        if (pattern_ && next < pattern_->files().size()) {
          open_input(next);
          continue;
        }
        if (!watch_) return false;
        if (!batch.empty()) return true;  // hand over what is here before waiting
        if (!wait_for_new_files()) return false;
        continue;
      }
      end_ = {line->end_offset, line->number};
      if (pattern_) pattern_->reached(current_, end_.offset, end_.line);
      if (config_.skip_empty && line->bytes == 0) continue;
      ++received_;
      std::string origin = shown_ + ":" + std::to_string(line->number);
      if (line->too_long) {
        // Not shown: a line that long is likely not text at all.
        batch.push_back(sdk::Record::refuse_input(std::move(origin), "", "line_too_long",
                                                  std::to_string(line->bytes) + " bytes, more than max_line_bytes (" +
                                                      std::to_string(config_.max_line_bytes) + ")"));
        continue;
      }
      if (config_.check_utf8) {
        if (const auto at = sdk::invalid_utf8_at(line->text); at != std::string_view::npos) {
          // The raw bytes stay in the record (the CSV reject file writes them back as they came).
          batch.push_back(sdk::Record::refuse_input(std::move(origin), std::move(line->text), "invalid_utf8",
                                                    "not UTF-8 at byte " + std::to_string(at + 1)));
          continue;
        }
      }
      sdk::Record record;
      record.origin = std::move(origin);
      record.set(config_.field, sdk::Value(std::move(line->text)));
      batch.push_back(std::move(record));
    }
    return true;
  }

  /// follow: waits until new files settled (added to the pattern's) or the run is stopped (false).
  bool wait_for_new_files() {
    using namespace std::chrono;
    for (;;) {
      const auto next_look = steady_clock::now() + duration_cast<steady_clock::duration>(duration<double>(config_.poll_interval));
      while (steady_clock::now() < next_look) {
        if (context_.stop_requested()) return false;
        std::this_thread::sleep_for(std::min<steady_clock::duration>(milliseconds(50), next_look - steady_clock::now()));
      }
      if (context_.stop_requested()) return false;
      const auto found = watch_->settled_new_files();
      if (found.empty()) continue;
      context_.log(sdk::LogLevel::info, config_.path + ": " + std::to_string(found.size()) + " new file(s), from " + found.front());
      pattern_->add_files(found);
      return true;
    }
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    sdk::SourceStats stats;
    stats.received = received_;
    return stats;
  }

 private:
  Config config_;
  sdk::Context& context_;
  std::string shown_;
  int fd_ = -1;
  std::optional<LineReader> reader_;
  std::optional<files::FilePosition> resume_;  // of the file being opened
  std::optional<files::PatternPositions> pattern_ =
      files::is_pattern(config_.path) ? std::make_optional<files::PatternPositions>() : std::nullopt;
  std::optional<files::FolderWatch> watch_;  // follow
  std::size_t current_ = 0;  // a pattern: the file being read
  std::optional<files::FileIdentity> identity_;  // of a file (not stdin): positions are kept
  struct {
    std::uint64_t offset = 0;
    std::uint64_t line = 0;
  } end_;  // after the last line read
  std::uint64_t received_ = 0;
};

}  // namespace
}  // namespace etl::plugins::file_lines

ETL_PLUGIN(etl::plugins::file_lines::FileLinesSource, "file-lines", "1.0.0",
           "One record per line of a file or stdin; lines that are not UTF-8 or too long are refused input");
