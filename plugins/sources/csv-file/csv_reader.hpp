#pragma once
// CsvReader: RFC 4180 records from a stream, one at a time, tolerant of bad ones. Parsing is
// libcsv's (strict mode); what this adds is what a loader needs around it: the line each
// record starts on and its raw text (for the report and the reject file), a bound on a record's
// size, and recovery — after a malformed record the reader goes on at the next line, and an
// unterminated quote costs only the line it started on (the lines after it are read again).

#include <csv.h>

#include <cstdint>
#include <deque>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace etl::plugins::csv_file {

struct CsvOptions {
  char delimiter = ',';
  char quote = '"';
  bool trim = false;                       // strip spaces and tabs around unquoted fields
  std::size_t max_record_bytes = 1 << 20;  // a longer record is malformed (an unterminated quote)
};

struct CsvRecord {
  std::uint64_t line = 0;                          // where it starts (1-based)
  std::string raw;                                 // its text as read, without the final line break
  std::vector<std::optional<std::string>> fields;  // an empty unquoted field is nullopt, "" quoted is ""
  std::string code;                                // malformed: csv.quote or csv.unterminated_quote
  std::string error;                               // malformed: why (fields are then not given)
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
    while (ready_.empty()) {
      Line line;
      if (next_line(line)) {
        feed(std::move(line));
      } else if (!pending_lines_.empty()) {
        finish_input();
      } else {
        return std::nullopt;
      }
    }
    CsvRecord out = std::move(ready_.front());
    ready_.pop_front();
    return out;
  }

  /// Physical lines read from the stream so far.
  std::uint64_t lines_read() const { return lines_read_; }

 private:
  struct Line {
    std::uint64_t number = 0;
    std::string text;  // with its line break, as read
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
    pending_bytes_ = 0;
    fields_.clear();
  }

  bool next_line(Line& line) {
    if (!replay_.empty()) {
      line = std::move(replay_.front());
      replay_.pop_front();
      return true;
    }
    if (!std::getline(in_, line.text)) {
      if (in_.bad()) throw std::runtime_error("read error");
      return false;
    }
    line.number = ++lines_read_;
    if (!in_.eof()) line.text += '\n';
    return true;
  }

  static void on_field(void* data, std::size_t length, void* self) {
    auto& fields = static_cast<CsvReader*>(self)->fields_;
    if (data == nullptr) {
      fields.emplace_back();
    } else {
      fields.emplace_back(std::string(static_cast<const char*>(data), length));
    }
  }
  static void on_record(int, void* self) { static_cast<CsvReader*>(self)->record_ended_ = true; }

  /// Feeds one physical line; a record ends in it when its line break is outside quotes.
  void feed(Line line) {
    if (line.text == "\n" || line.text == "\r\n" || line.text.empty()) {
      if (pending_lines_.empty()) return;  // a blank line between records
    }
    pending_bytes_ += line.text.size();
    pending_lines_.push_back(std::move(line));
    const std::string& text = pending_lines_.back().text;
    record_ended_ = false;
    const std::size_t parsed = csv_parse(&parser_, text.data(), text.size(), on_field, on_record, this);
    if (parsed != text.size() || csv_error(&parser_) == CSV_EPARSE) {
      malformed("malformed quoting (a quote inside an unquoted field, or text after a closing quote)");
    } else if (record_ended_) {
      emit();
    } else if (pending_bytes_ > options_.max_record_bytes) {
      unterminated("the record is longer than max_record_bytes (" + std::to_string(options_.max_record_bytes) + ")");
    }
  }

  std::string pending_text() {
    std::string raw;
    if (pending_lines_.size() == 1) {
      raw = std::move(pending_lines_.front().text);  // the common case: no copy
    } else {
      for (const auto& line : pending_lines_) raw += line.text;
    }
    strip_line_break(raw);
    return raw;
  }

  void emit() {
    CsvRecord record;
    record.line = pending_lines_.front().number;
    record.raw = pending_text();
    const std::size_t width = fields_.size();
    record.fields = std::move(fields_);
    ready_.push_back(std::move(record));
    fields_.clear();
    fields_.reserve(width);  // the next row is likely as wide
    pending_lines_.clear();
    pending_bytes_ = 0;
  }

  /// The record so far is malformed: reported whole, and the reader goes on at the next line.
  void malformed(const std::string& why) {
    CsvRecord record;
    record.line = pending_lines_.front().number;
    record.raw = pending_text();
    record.code = "csv.quote";
    record.error = why;
    ready_.push_back(std::move(record));
    reset_parser();
  }

  /// A quote that never closes (or closes too far away): only the line it started on is
  /// reported; the lines after it are read again as records of their own.
  void unterminated(const std::string& why) {
    Line first = std::move(pending_lines_.front());
    pending_lines_.pop_front();
    for (auto it = pending_lines_.rbegin(); it != pending_lines_.rend(); ++it) replay_.push_front(std::move(*it));
    CsvRecord record;
    record.line = first.number;
    record.raw = std::move(first.text);
    strip_line_break(record.raw);
    record.code = "csv.unterminated_quote";
    record.error = "a quoted field does not end: " + why;
    ready_.push_back(std::move(record));
    reset_parser();
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

  static void strip_line_break(std::string& text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  }

  std::istream& in_;
  CsvOptions options_;
  csv_parser parser_{};
  bool initialized_ = false;
  std::deque<Line> pending_lines_;  // the lines of the record being parsed
  std::size_t pending_bytes_ = 0;
  std::deque<Line> replay_;  // lines to read again after an unterminated quote
  std::deque<CsvRecord> ready_;
  std::vector<std::optional<std::string>> fields_;
  bool record_ended_ = false;
  std::uint64_t lines_read_ = 0;
};

}  // namespace etl::plugins::csv_file
