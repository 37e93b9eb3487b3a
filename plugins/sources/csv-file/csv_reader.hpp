#pragma once
// CsvReader: RFC 4180 records from a stream, one at a time, tolerant of bad ones. Parsing is
// libcsv's (strict mode), but for lines without quotes, which are split at their delimiters
// directly (the common row, three times cheaper); what this adds is what a loader needs around it: the line each
// record starts on and its raw text (for the report and the reject file), a bound on a record's
// size, and recovery — after a malformed record the reader goes on at the next line, and an
// unterminated quote costs only the line it started on (the lines after it are read again).
// A caller that reuses one CsvRecord gets each row without allocating (see next(CsvRecord&)).

#include <csv.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace etl::plugins::csv_file {

struct CsvOptions {
  char delimiter = ',';
  char quote = '"';
  bool trim = false;                       // strip spaces and tabs around unquoted fields
  std::size_t max_record_bytes = 1 << 20;  // a longer record is malformed (an unterminated quote)
  /// A line without quotes (the common row) is split at its delimiters here rather than by
  /// libcsv, which then reads only lines with quotes. Off only to test the two against each other.
  bool split_unquoted_lines = true;
};

struct CsvRecord {
  std::uint64_t line = 0;                          // where it starts (1-based)
  std::string raw;                                 // its text as read, without the final line break
  std::vector<std::optional<std::string>> fields;  // an empty unquoted field is nullopt, "" quoted is ""
  std::string code;                                // malformed: csv.quote or csv.unterminated_quote
  std::string error;                               // malformed: why (fields are then not given)
  std::uint64_t end_offset = 0;                    // bytes of the input consumed up to the record's end
  std::uint64_t end_line = 0;                      // the record's last physical line
};

class CsvReader {
 public:
  CsvReader(std::istream& in, CsvOptions options) : in_(in), options_(options) { reset_parser(); }
  ~CsvReader() { csv_free(&parser_); }
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  /// The next record (well-formed or not); nullopt at the end of the input. Throws
  /// std::runtime_error when the stream itself fails (not for bad content).
  std::optional<CsvRecord> next() {
    CsvRecord record;
    if (!next(record)) return std::nullopt;
    return record;
  }

  /// The same into `record`, reusing its buffers: a caller that keeps one CsvRecord across
  /// calls allocates nothing per row for rows like the last (the loader's hot path). False at
  /// the end of the input.
  bool next(CsvRecord& record) {
    out_ = &record;
    record.line = 0;
    record.raw.clear();
    record.code.clear();
    record.error.clear();
    field_count_ = 0;
    produced_ = false;
    while (!produced_) {
      if (next_line()) {
        feed();
      } else if (!pending_lines_.empty()) {
        finish_input();
      } else {
        record.fields.clear();
        return false;
      }
    }
    return true;
  }

  /// Physical lines read from the stream so far.
  std::uint64_t lines_read() const { return lines_read_; }

  /// The stream has been moved to `offset`, the end of line `line` (a resumed run): counting goes
  /// on from there. Only between records (what next() returned is complete).
  void resume_at(std::uint64_t offset, std::uint64_t line) {
    offset_ = offset;
    lines_read_ = line;
    replay_.clear();
    reset_parser();
  }
  /// Bytes read from the stream so far.
  std::uint64_t offset() const { return offset_; }

 private:
  struct Line {
    std::uint64_t number = 0;
    std::string text;  // with its line break, as read
    std::uint64_t end = 0;  // input offset after it
  };
  struct LineStart {
    std::uint64_t number = 0;
    std::size_t offset = 0;  // in the record's raw text
    std::uint64_t end = 0;   // input offset after the line
  };

  static int no_space(unsigned char) { return 0; }
  static int is_space(unsigned char c) { return c == ' ' || c == '\t'; }

  void reset_parser() {
    if (initialized_) csv_free(&parser_);
    // Strict: a quote inside an unquoted field, or text after a closing quote, is an error
    // rather than guessed at; at the end, an open quote is an error too.
    csv_init(&parser_, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL);
    initialized_ = true;
    csv_set_delim(&parser_, static_cast<unsigned char>(options_.delimiter));
    csv_set_quote(&parser_, static_cast<unsigned char>(options_.quote));
    // libcsv trims spaces by default; a loader must not change data unless asked.
    csv_set_space_func(&parser_, options_.trim ? is_space : no_space);
    pending_lines_.clear();
    field_count_ = 0;
  }

  /// Reads the next physical line into line_ (its number in line_number_).
  bool next_line() {
    if (!replay_.empty()) {
      line_ = std::move(replay_.front().text);
      line_number_ = replay_.front().number;
      line_end_ = replay_.front().end;
      replay_.pop_front();
      return true;
    }
    if (!std::getline(in_, line_)) {
      if (in_.bad()) throw std::runtime_error("read error");
      return false;
    }
    line_number_ = ++lines_read_;
    if (!in_.eof()) line_ += '\n';
    offset_ += line_.size();
    line_end_ = offset_;
    return true;
  }

  static void on_field(void* data, std::size_t length, void* self) {
    static_cast<CsvReader*>(self)->add_field(static_cast<const char*>(data), length);
  }
  /// The record's next field: null when `data` is.
  void add_field(const char* data, std::size_t length) {
    auto& fields = out_->fields;
    const std::size_t index = field_count_++;
    if (index == fields.size()) fields.emplace_back();
    std::optional<std::string>& field = fields[index];
    if (data == nullptr) {
      field.reset();
    } else if (field) {
      field->assign(data, length);  // keeps the buffer of the row before
    } else {
      field.emplace(data, length);
    }
  }

  /// A line that starts a record and holds no quote and no carriage return but a final CRLF's is
  /// a record of its own whose fields are the text between delimiters (empty: null), which is
  /// what libcsv makes of it too (tests/csv_reader_test.cpp compares the two). Not with trim:
  /// libcsv's rules for spaces around fields stay libcsv's.
  bool split_unquoted_line() {
    const std::string_view body = without_line_break(line_);
    if (body.find(options_.quote) != std::string_view::npos || body.find('\r') != std::string_view::npos) return false;
    for (std::size_t from = 0;;) {
      const std::size_t to = std::min(body.find(options_.delimiter, from), body.size());
      add_field(to == from ? nullptr : body.data() + from, to - from);
      if (to == body.size()) break;
      from = to + 1;
    }
    out_->raw.assign(body);
    complete(line_number_);
    ends_at(line_end_, line_number_);
    return true;
  }
  static void on_record(int, void* self) { static_cast<CsvReader*>(self)->record_ended_ = true; }

  /// Feeds the physical line in line_; a record ends in it when its line break is outside quotes.
  void feed() {
    if (without_line_break(line_).empty() && pending_lines_.empty()) return;  // a blank line between records
    if (pending_lines_.empty() && options_.split_unquoted_lines && !options_.trim && split_unquoted_line()) return;
    std::string& raw = out_->raw;
    pending_lines_.push_back(LineStart{line_number_, raw.size(), line_end_});
    raw += line_;
    record_ended_ = false;
    const std::size_t parsed = csv_parse(&parser_, line_.data(), line_.size(), on_field, on_record, this);
    if (parsed != line_.size() || csv_error(&parser_) == CSV_EPARSE) {
      malformed("malformed quoting (a quote inside an unquoted field, or text after a closing quote)");
    } else if (record_ended_) {
      emit();
      // libcsv ends a record at a carriage return too: after one inside the line, what followed
      // it is in this record's fields, and the parser is not to carry it into the next line.
      if (without_line_break(line_).find('\r') != std::string_view::npos) reset_parser();
    } else if (raw.size() > options_.max_record_bytes) {
      unterminated("the record is longer than max_record_bytes (" + std::to_string(options_.max_record_bytes) + ")");
    }
  }

  void emit() {
    strip_line_break(out_->raw);
    complete(pending_lines_.front().number);
    ends_at(pending_lines_.back().end, pending_lines_.back().number);
    pending_lines_.clear();
  }

  void ends_at(std::uint64_t offset, std::uint64_t line) {
    out_->end_offset = offset;
    out_->end_line = line;
  }

  /// The well-formed record starting on `line` has all its fields.
  void complete(std::uint64_t line) {
    out_->line = line;
    out_->fields.resize(field_count_);
    field_count_ = 0;
    produced_ = true;
  }

  /// The record so far is malformed: reported whole, and the reader goes on at the next line.
  void malformed(const std::string& why) {
    out_->line = pending_lines_.front().number;
    strip_line_break(out_->raw);
    out_->fields.clear();
    out_->code = "csv.quote";
    out_->error = why;
    ends_at(pending_lines_.back().end, pending_lines_.back().number);
    reset_parser();
    produced_ = true;
  }

  /// A quote that never closes (or closes too far away): only the line it started on is
  /// reported; the lines after it are read again as records of their own.
  void unterminated(const std::string& why) {
    std::string& raw = out_->raw;
    for (std::size_t i = pending_lines_.size(); i-- > 1;) {
      const std::size_t end = i + 1 < pending_lines_.size() ? pending_lines_[i + 1].offset : raw.size();
      replay_.push_front(Line{pending_lines_[i].number, raw.substr(pending_lines_[i].offset, end - pending_lines_[i].offset),
                              pending_lines_[i].end});
    }
    if (pending_lines_.size() > 1) raw.resize(pending_lines_[1].offset);
    out_->line = pending_lines_.front().number;
    strip_line_break(raw);
    out_->fields.clear();
    ends_at(pending_lines_.front().end, pending_lines_.front().number);
    out_->code = "csv.unterminated_quote";
    out_->error = "a quoted field does not end: " + why;
    reset_parser();
    produced_ = true;
  }

  /// The input ended inside a record: a last line without a line break, or an open quote.
  void finish_input() {
    record_ended_ = false;
    if (csv_fini(&parser_, on_field, on_record, this) != 0) {
      unterminated("the input ends inside it");
      return;
    }
    emit();
  }

  /// The line without its final LF or CRLF.
  static std::string_view without_line_break(std::string_view line) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  }

  static void strip_line_break(std::string& text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  }

  std::istream& in_;
  CsvOptions options_;
  csv_parser parser_{};
  bool initialized_ = false;
  CsvRecord* out_ = nullptr;              // the record next() is filling
  std::size_t field_count_ = 0;           // fields of it given so far
  bool produced_ = false;                 // it is complete (well-formed or not)
  std::vector<LineStart> pending_lines_;  // the lines of the record being parsed
  std::string line_;                      // the physical line being fed
  std::uint64_t line_number_ = 0;
  std::uint64_t line_end_ = 0;  // input offset after line_
  std::uint64_t offset_ = 0;    // input bytes read so far
  std::deque<Line> replay_;  // lines to read again after an unterminated quote
  bool record_ended_ = false;
  std::uint64_t lines_read_ = 0;
};

}  // namespace etl::plugins::csv_file
