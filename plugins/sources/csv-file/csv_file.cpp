// csv-file: one record per CSV row of a file, a gzip file or stdin, with typed columns. A bad row
// (malformed quoting, a wrong number of fields, text that is not UTF-8, a value that is not its
// column's type) is refused input, reported at stage source with file:line and the row as it
// came, and every good row still flows. Memory is bounded by one record (max_record_bytes).

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include <Poco/InflatingStream.h>

#include "column_types.hpp"
#include "csv_reader.hpp"
#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"
#include "files/file_position.hpp"

namespace etl::plugins::csv_file {
namespace {

struct Config {
  std::string path;
  std::string delimiter = ",";
  std::string quote = "\"";
  bool header = true;
  std::vector<std::string> columns;
  std::map<std::string, std::string> types;
  std::vector<std::string> null_values;
  bool trim = false;
  bool check_utf8 = true;
  std::uint64_t max_record_bytes = 1048576;
  std::string on_changed = "error";
  bool follow = false;
  double poll_interval = 1;
};

/// {"additionalProperties": {"enum": [every column type's name]}}
std::string types_schema() {
  std::string names;
  for (const char* name : kColumnTypeNames) names += std::string(names.empty() ? "" : ", ") + "\"" + name + "\"";
  return R"({"additionalProperties": {"enum": [)" + names + "]}}";
}

class CsvFileSource final : public sdk::Source, public sdk::Resumable, public sdk::LongRunning {
 public:
  static sdk::ConfigMap<Config> config_map() {
    sdk::ConfigMap<Config> map;
    map.key("path", &Config::path,
            "CSV file to read (gzip files are recognised by their first bytes); `-` reads stdin. A pattern "
            "(`incoming/*.csv`, with * ? [...]) reads every matching file in name order, each with the first's "
            "columns; with settings.state each file's position is kept, so a file read to its end is not read "
            "again and one that grew is read where it grew.")
        .required()
        .min_length(1);
    map.key("delimiter", &Config::delimiter, "The field separator: one character, e.g. \",\", \";\" or \"\\t\".")
        .min_length(1).max_length(1);
    map.key("quote", &Config::quote, "The quote character.").min_length(1).max_length(1);
    map.key("header", &Config::header,
            "The first row names the columns (with columns given too, it is skipped and columns name them).");
    map.key("columns", &Config::columns, "Column names, in file order (needed when header is false).");
    map.key("types", &Config::types,
            "Column -> type: string (default), integer, real, boolean, date (YYYY-MM-DD, kept as text) or json. "
            "A value that is not its type makes the row refused input (code csv.type); an empty field is null.")
        .schema(types_schema());
    map.key("null_values", &Config::null_values,
            "Texts that mean null, e.g. [\"NULL\", \"\\\\N\"]. An empty unquoted field is always null; \"\" quoted is "
            "an empty string.");
    map.key("trim", &Config::trim, "Strip spaces and tabs around unquoted fields.");
    map.key("check_utf8", &Config::check_utf8, "Refuse rows that are not well-formed UTF-8 (code invalid_utf8).");
    map.key("max_record_bytes", &Config::max_record_bytes,
            "A row longer than this is taken for an unterminated quote: its first line is refused and the lines "
            "after it are read again. Memory stays bounded by this.")
        .minimum(16);
    map.key("on_changed", &Config::on_changed,
            "With settings.state: what to do when the file to resume is not the one the position was taken in "
            "(smaller, or its first bytes differ): error (the run does not start) or restart (read it from its "
            "beginning).")
        .one_of({"error", "restart"});
    map.key("follow", &Config::follow,
            "With a pattern as path: after the matching files are read, watch for new ones and read each as it "
            "appears, once it has stopped changing for poll_interval (so move files in whole, or finish writing "
            "them within it), until stopped; the pipeline is then a service. With no file there at the start and "
            "no columns, the run waits for the first file to learn them. A file read during the run that grows "
            "afterwards is read where it grew on the next run.");
    map.key("poll_interval", &Config::poll_interval, "follow: seconds between looks for new files.").minimum(0.05);
    return map;
  }

  CsvFileSource(Config config, sdk::Context& context) : config_(std::move(config)), context_(context) {
    shown_ = config_.path == "-" ? std::string("stdin") : config_.path;
    if (config_.delimiter == config_.quote) throw sdk::ConfigError("/quote", "the quote and the delimiter are the same");
    if (config_.follow && !glob_) {
      throw sdk::ConfigError("/follow", "follow watches a pattern for new files: path must be one (e.g. incoming/*.csv)");
    }
    if (!config_.header && config_.columns.empty()) {
      throw sdk::ConfigError("/columns", "without a header row, give the column names");
    }
    for (std::size_t i = 0; i < config_.columns.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (config_.columns[i] == config_.columns[j]) {
          throw sdk::ConfigError("/columns/" + std::to_string(i), "column \"" + config_.columns[i] + "\" is named twice");
        }
      }
    }
    for (const auto& [column, type] : config_.types) {
      if (!config_.columns.empty() &&
          std::find(config_.columns.begin(), config_.columns.end(), column) == config_.columns.end()) {
        throw sdk::ConfigError("/types/" + column, "\"" + column + "\" is not one of the columns");
      }
    }
  }

  void open() override {
    names_ = config_.columns;
    if (glob_) {
      paths_ = files::matching_files(config_.path);
      pattern_.set_files(paths_);
      context_.log(sdk::LogLevel::info, config_.path + ": " + std::to_string(paths_.size()) + " file(s) match" +
                                            (config_.follow ? "; following it for new ones" : ""));
      if (config_.follow) watch_.emplace(config_.path, paths_);
    } else {
      paths_ = {config_.path};
    }
    if (paths_.empty() && watch_) {
      context_.log(sdk::LogLevel::info, config_.path + ": waiting for the first file");
      if (!wait_for_new_files()) {
        ahead_done_ = true;  // stopped before any came
        return;
      }
    }
    if (paths_.empty()) {
      set_types();
      ahead_done_ = true;
      return;
    }
    open_input(0, true);
    set_types();
    context_.log(sdk::LogLevel::info, "reading " + shown_ + (inflated_ ? " (gzip)" : "") + ": " +
                                          std::to_string(names_.size()) + " columns");
    reader_thread_ = std::thread([this] { read_ahead(); });
  }

 private:
  void set_types() {
    for (const auto& [column, type] : config_.types) {
      if (std::find(names_.begin(), names_.end(), column) == names_.end()) {
        throw sdk::PluginError(shown_ + ": types names column \"" + column + "\", which the header does not have");
      }
    }
    types_.assign(names_.size(), ColumnType::string);
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (const auto declared = config_.types.find(names_[i]); declared != config_.types.end()) {
        types_[i] = *parse_column_type(declared->second);
      }
    }
  }

  /// Opens paths_[index] as the input rows come from: gzip detected, the header read (the first
  /// file's names the columns; a later one's must name the same), the committed position checked
  /// and skipped to.
  void open_input(std::size_t index, bool first) {
    current_ = index;
    const std::string& path = paths_[index];
    shown_ = path == "-" ? std::string("stdin") : path;
    reader_.reset();
    inflated_.reset();
    file_ = std::make_unique<std::ifstream>(path == "-" ? std::string("/dev/stdin") : path, std::ios::binary);
    if (!*file_) throw sdk::PluginError(shown_ + ": cannot open: " + std::strerror(errno));
    // Only a regular file can be resumed: a pipe or stdin cannot be read again.
    identity_.reset();
    if (path != "-" && files::is_regular_file(path)) identity_ = files::FileIdentity::of(path);
    if (glob_) {
      resume_ = pattern_.committed(index);
      std::lock_guard lock(ahead_mutex_);
      pattern_.opened(index, identity_);
    }
    resume_ = files::usable_position(path, shown_, resume_, config_.on_changed == "restart", context_);
    std::istream* in = file_.get();
    // gzip by its magic bytes, not its name: a .csv that is compressed, or stdin, works too.
    if (file_->peek() == 0x1f) {
      file_->get();
      const bool gzip = file_->peek() == 0x8b;
      file_->unget();
      if (gzip) {
        inflated_ = std::make_unique<Poco::InflatingInputStream>(*file_, Poco::InflatingStreamBuf::STREAM_GZIP);
        in = inflated_.get();
      }
    }
    reader_ = std::make_unique<CsvReader>(
        *in, CsvOptions{config_.delimiter[0], config_.quote[0], config_.trim, static_cast<std::size_t>(config_.max_record_bytes)});
    if (config_.header) {
      if (first) {
        read_header(names_);
      } else {
        std::vector<std::string> names = config_.columns;
        read_header(names);
        if (names != names_) {
          throw sdk::PluginError(shown_ + ": its header names other columns than " + paths_.front() +
                                 "'s; the files a pattern matches must have one layout");
        }
      }
    }
    if (resume_) skip_to_resume_position(*in);
  }

 public:

  [[nodiscard]] std::vector<std::string> fields() const override { return names_; }
  [[nodiscard]] bool runs_until_stopped() const override { return config_.follow; }

  void resume_from(std::string_view position) override {
    files::take_committed(position, config_.path, glob_ ? &pattern_ : nullptr, resume_, context_);
  }

  [[nodiscard]] std::string position() const override {
    std::lock_guard lock(ahead_mutex_);
    if (glob_) return pattern_.text();
    if (!identity_ || (last_end_.offset == 0 && !resume_)) return {};
    files::FilePosition position;
    position.offset = last_end_.offset;
    position.line = last_end_.line;
    position.identity = *identity_;
    return position.to_json_text();
  }

  bool read(sdk::Batch& batch, std::size_t max_records) override {
    std::unique_lock lock(ahead_mutex_);
    while (batch.size() < max_records) {
      if (context_.stop_requested()) return false;
      if (ahead_.empty()) {
        if (ahead_done_) {
          if (ahead_error_) std::rethrow_exception(std::exchange(ahead_error_, nullptr));
          return false;
        }
        if (!batch.empty()) return true;  // hand over what is here rather than wait
        ahead_changed_.wait_for(lock, std::chrono::milliseconds(100));
        continue;
      }
      Ahead& front = ahead_.front();
      while (front_taken_ < front.records.size() && batch.size() < max_records) {
        last_end_ = front.ends[front_taken_];
        if (glob_) pattern_.reached(last_end_.file, last_end_.offset, last_end_.line);
        batch.push_back(std::move(front.records[front_taken_++]));
        ++received_;
      }
      if (front_taken_ == front.records.size()) {
        ahead_.pop_front();
        front_taken_ = 0;
        ahead_changed_.notify_all();  // room for the reader thread
      }
    }
    return true;
  }

  ~CsvFileSource() override {
    {
      std::lock_guard lock(ahead_mutex_);
      ahead_stopping_ = true;
    }
    ahead_changed_.notify_all();
    if (reader_thread_.joinable()) reader_thread_.join();
  }

  [[nodiscard]] sdk::SourceStats stats() const override {
    sdk::SourceStats stats;
    std::lock_guard lock(ahead_mutex_);
    stats.received = received_;
    return stats;
  }

 private:
  /// The reader thread: parses and types rows into batches a few ahead of read(), so that on
  /// two cores this work (about half the cost per row) overlaps with the host's. Memory stays
  /// bounded: at most kAheadBatches batches wait.
  void read_ahead() {
    bool more = true;
    while (more) {
      Ahead ready;
      ready.records.reserve(kAheadBatchSize);
      ready.ends.reserve(kAheadBatchSize);
      std::exception_ptr error;
      try {
        while (ready.records.size() < kAheadBatchSize) {
          if (!next_row(row_)) {
            // A pattern goes on with its next file.
            if (current_ + 1 < paths_.size()) {
              open_input(current_ + 1, false);
              continue;
            }
            if (watch_) {
              if (!ready.records.empty()) break;  // hand these over before waiting
              if (wait_for_new_files()) continue;
            }
            more = false;
            break;
          }
          ready.ends.push_back(End{current_, row_.end_offset, row_.end_line});
          ready.records.push_back(to_record(row_));
          // A long row's buffers are not kept for the next: memory stays bounded by the rows in flight.
          if (row_.raw.capacity() > kKeptRowBytes) row_ = CsvRecord{};
        }
      } catch (...) {
        error = std::current_exception();  // read() throws it once the rows before it are out
        more = false;
      }
      std::unique_lock lock(ahead_mutex_);
      ahead_changed_.wait(lock, [&] { return ahead_.size() < kAheadBatches || ahead_stopping_; });
      if (ahead_stopping_) return;
      if (!ready.records.empty()) ahead_.push_back(std::move(ready));
      if (!more) {
        ahead_error_ = error;
        ahead_done_ = true;
      }
      ahead_changed_.notify_all();
    }
  }

  /// follow: waits until new files settled (appended to paths_ and the pattern's positions), or
  /// the run stops (false).
  bool wait_for_new_files() {
    const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(config_.poll_interval));
    for (;;) {
      {
        std::unique_lock lock(ahead_mutex_);
        ahead_changed_.wait_for(lock, interval, [&] { return ahead_stopping_; });
        if (ahead_stopping_) return false;
      }
      if (context_.stop_requested()) return false;
      const auto found = watch_->settled_new_files();
      if (found.empty()) continue;
      context_.log(sdk::LogLevel::info, config_.path + ": " + std::to_string(found.size()) + " new file(s), from " + found.front());
      paths_.insert(paths_.end(), found.begin(), found.end());
      std::lock_guard lock(ahead_mutex_);
      pattern_.add_files(found);
      return true;
    }
  }

  /// Goes to the committed position (checked by usable_position): a plain file is sought to the
  /// offset, a gzip file read up to it (its offsets are in the decompressed text).
  void skip_to_resume_position(std::istream& in) {
    const std::uint64_t here = reader_->offset();
    if (resume_->offset > here) {
      if (inflated_) {
        in.ignore(static_cast<std::streamsize>(resume_->offset - here));
        if (static_cast<std::uint64_t>(in.gcount()) != resume_->offset - here) {
          throw sdk::PluginError(shown_ + ": the gzip text ends before the committed offset " +
                                 std::to_string(resume_->offset));
        }
      } else {
        file_->clear();
        file_->seekg(static_cast<std::streamoff>(resume_->offset));
        if (!*file_) throw sdk::PluginError(shown_ + ": cannot seek to the committed offset " + std::to_string(resume_->offset));
      }
      reader_->resume_at(resume_->offset, resume_->line);
    }
    last_end_ = End{current_, resume_->offset, resume_->line};
    if (glob_) {
      std::lock_guard lock(ahead_mutex_);
      pattern_.reached(current_, last_end_.offset, last_end_.line);
    }
    context_.log(sdk::LogLevel::info, shown_ + ": resuming after line " + std::to_string(resume_->line) + " (byte " +
                                          std::to_string(resume_->offset) + (inflated_ ? " of the gzip text, re-read to it" : "") + ")");
  }

  bool next_row(CsvRecord& row) {
    try {
      return reader_->next(row);
    } catch (const std::exception& e) {
      throw sdk::PluginError(shown_ + ": " + e.what() + " after line " + std::to_string(reader_->lines_read()));
    }
  }

  /// Reads the header row into `names` (left as they are when columns are configured).
  void read_header(std::vector<std::string>& names) {
    CsvRecord header;
    if (!next_row(header)) throw sdk::PluginError(shown_ + ": the file is empty: there is no header row");
    if (!header.error.empty()) {
      throw sdk::PluginError(shown_ + ":" + std::to_string(header.line) + ": the header row is malformed: " + header.error);
    }
    if (!config_.columns.empty()) {
      if (header.fields.size() != config_.columns.size()) {
        context_.log(sdk::LogLevel::warning, shown_ + ": the header has " + std::to_string(header.fields.size()) +
                                                 " columns, columns names " + std::to_string(config_.columns.size()));
      }
      return;  // columns rename them
    }
    for (std::size_t i = 0; i < header.fields.size(); ++i) {
      std::string name = header.fields[i].value_or("");
      if (i == 0 && name.starts_with("\xEF\xBB\xBF")) name.erase(0, 3);  // a byte order mark
      if (name.empty()) name = "column_" + std::to_string(i + 1);
      if (std::find(names.begin(), names.end(), name) != names.end()) {
        throw sdk::PluginError(shown_ + ":" + std::to_string(header.line) + ": the header names column \"" + name +
                               "\" twice");
      }
      names.push_back(std::move(name));
    }
  }

  /// The record for a row; the row's buffers stay with it for the next one.
  sdk::Record to_record(CsvRecord& row) {
    std::string origin;
    origin.reserve(shown_.size() + 21);
    origin.append(shown_).append(1, ':').append(std::to_string(row.line));
    if (!row.error.empty()) {
      return sdk::Record::refuse_input(std::move(origin), std::move(row.raw), row.code, row.error);
    }
    if (config_.check_utf8) {
      if (const auto at = sdk::invalid_utf8_at(row.raw); at != std::string_view::npos) {
        return sdk::Record::refuse_input(std::move(origin), std::move(row.raw), "invalid_utf8",
                                         "not UTF-8 at byte " + std::to_string(at + 1) + " of the row");
      }
    }
    if (row.fields.size() != names_.size()) {
      return sdk::Record::refuse_input(std::move(origin), std::move(row.raw), "csv.field_count",
                                       std::to_string(row.fields.size()) + " fields where the header has " +
                                           std::to_string(names_.size()));
    }
    sdk::Record record;
    record.origin = std::move(origin);
    auto& fields = record.fields();
    fields.reserve(names_.size());
    for (std::size_t i = 0; i < names_.size(); ++i) {
      const std::optional<std::string>& text = row.fields[i];
      const bool null = !text || (text->empty() && types_[i] != ColumnType::string) ||
                        (!config_.null_values.empty() && std::find(config_.null_values.begin(), config_.null_values.end(),
                                                                   *text) != config_.null_values.end());
      if (null) {
        fields.push_back(sdk::Field{names_[i], sdk::Value()});
        continue;
      }
      sdk::Value value;
      if (const auto why = typed_value(types_[i], *text, value)) {
        return sdk::Record::refuse_input(record.origin, std::move(row.raw), "csv.type",
                                         "column \"" + names_[i] + "\": " + *why);
      }
      fields.push_back(sdk::Field{names_[i], std::move(value)});
    }
    return record;
  }

  Config config_;
  sdk::Context& context_;
  std::string shown_;
  std::unique_ptr<std::ifstream> file_;
  std::unique_ptr<std::istream> inflated_;
  std::unique_ptr<CsvReader> reader_;
  std::vector<std::string> names_;
  std::vector<ColumnType> types_;
  struct End {
    std::size_t file = 0;  // in paths_
    std::uint64_t offset = 0;
    std::uint64_t line = 0;
  };
  /// Rows parsed ahead of read(), with where each ends in the input.
  struct Ahead {
    sdk::Batch records;
    std::vector<End> ends;
  };
  const bool glob_ = files::is_pattern(config_.path);
  std::vector<std::string> paths_;  // the file, or the files a pattern matches in name order (then new ones: follow)
  std::optional<files::FolderWatch> watch_;  // follow
  std::size_t current_ = 0;         // the one being read (the reader thread's)
  std::optional<files::FilePosition> resume_;  // of the file being opened
  std::optional<files::FileIdentity> identity_;  // of a file (not stdin): positions are kept
  CsvRecord row_;  // the reader thread's row: its buffers serve every row (no allocation per row to parse it)

  static constexpr std::size_t kAheadBatchSize = 512;
  static constexpr std::size_t kAheadBatches = 8;
  static constexpr std::size_t kKeptRowBytes = 64 * 1024;
  std::thread reader_thread_;
  mutable std::mutex ahead_mutex_;  // everything below
  std::condition_variable ahead_changed_;
  std::deque<Ahead> ahead_;
  End last_end_;  // where the last record handed to read() ends
  files::PatternPositions pattern_;  // a pattern's files and where read() has handed each to
  std::size_t front_taken_ = 0;  // records of ahead_.front() already handed to read()
  bool ahead_done_ = false;
  bool ahead_stopping_ = false;
  std::exception_ptr ahead_error_;
  std::uint64_t received_ = 0;
};

}  // namespace
}  // namespace etl::plugins::csv_file

ETL_PLUGIN(etl::plugins::csv_file::CsvFileSource, "csv-file", "1.0.0",
           "One record per CSV row (RFC 4180, gzip, stdin) with typed columns; bad rows are refused input with file:line");
