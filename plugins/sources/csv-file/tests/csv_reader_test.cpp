// CsvReader over in-memory text: RFC 4180 records, and recovery from bad ones.

#include <gtest/gtest.h>

#include <random>
#include <sstream>

#include "column_types.hpp"
#include "csv_reader.hpp"

namespace etl::plugins::csv_file {
namespace {

struct Read {
  std::uint64_t line;
  std::string what;  // fields joined by | (null as ~), or "!code raw"
};

std::vector<Read> read_all(const std::string& text, CsvOptions options = {}) {
  std::istringstream in(text);
  CsvReader reader(in, options);
  std::vector<Read> out;
  while (auto record = reader.next()) {
    if (!record->error.empty()) {
      out.push_back({record->line, "!" + record->code + " " + record->raw});
      continue;
    }
    std::string joined;
    for (std::size_t i = 0; i < record->fields.size(); ++i) {
      joined += (i ? "|" : "") + record->fields[i].value_or("~");
    }
    out.push_back({record->line, joined});
  }
  return out;
}

std::string describe(const std::vector<Read>& reads) {
  std::string text;
  for (const auto& r : reads) text += std::to_string(r.line) + ": " + r.what + "\n";
  return text;
}

TEST(CsvReader, Rfc4180QuotingEmbeddedLineBreaksAndCrlf) {
  const auto reads = read_all("id,name\r\n1,\"Doe, Jane\"\r\n2,\"say \"\"hi\"\"\"\r\n3,\"two\nlines\"\r\n4,plain\r\n");
  EXPECT_EQ(describe(reads), "1: id|name\n2: 1|Doe, Jane\n3: 2|say \"hi\"\n4: 3|two\nlines\n6: 4|plain\n");
}

TEST(CsvReader, EmptyUnquotedIsNullEmptyQuotedIsEmptyAndSpacesAreKept) {
  const auto reads = read_all("a,b,c\n, \"\" , x \n,\"\",\n");
  // " \"\" " is malformed in strict mode (text around a quoted field); the next row is fine.
  ASSERT_EQ(reads.size(), 3u) << describe(reads);
  EXPECT_EQ(reads[1].what.substr(0, 10), "!csv.quote");
  EXPECT_EQ(reads[2].what, "~||~");
  EXPECT_EQ(describe(read_all("a, b ,c\n")), "1: a| b |c\n");
  CsvOptions trimmed;
  trimmed.trim = true;
  EXPECT_EQ(describe(read_all("a, b ,c\n", trimmed)), "1: a|b|c\n");
}

TEST(CsvReader, AMalformedRowIsReportedAndTheNextRowsStillCome) {
  const auto reads = read_all("1,ok\n2,bad\"quote\n3,\"closed\"junk\n4,fine\n");
  EXPECT_EQ(describe(reads), "1: 1|ok\n2: !csv.quote 2,bad\"quote\n3: !csv.quote 3,\"closed\"junk\n4: 4|fine\n");
}

TEST(CsvReader, AnUnterminatedQuoteCostsOnlyItsLine) {
  // The quote opened on line 2 never closes: at the end of the input line 2 is reported and
  // lines 3 and 4 are read again as rows of their own.
  EXPECT_EQ(describe(read_all("1,a\n2,\"open\n3,b\n4,c\n")), "1: 1|a\n2: !csv.unterminated_quote 2,\"open\n3: 3|b\n4: 4|c\n");
  // The same when the quote runs longer than max_record_bytes: memory stays bounded.
  CsvOptions small;
  small.max_record_bytes = 20;
  std::string text = "1,\"open\n";
  for (int i = 2; i <= 8; ++i) text += std::to_string(i) + ",x\n";
  const auto reads = read_all(text, small);
  ASSERT_EQ(reads.size(), 8u) << describe(reads);
  EXPECT_EQ(reads[0].what, "!csv.unterminated_quote 1,\"open");
  EXPECT_EQ(reads[7].what, "8|x");
}

TEST(CsvReader, OtherDelimitersQuotesBlankLinesAndNoFinalLineBreak) {
  CsvOptions semicolons;
  semicolons.delimiter = ';';
  semicolons.quote = '\'';
  EXPECT_EQ(describe(read_all("a;'b;c'\n\n\nd;e", semicolons)), "1: a|b;c\n4: d|e\n");
  CsvOptions tabs;
  tabs.delimiter = '\t';
  EXPECT_EQ(describe(read_all("a\tb\n", tabs)), "1: a|b\n");
}

TEST(CsvReader, RawTextIsTheRowAsItCame) {
  std::istringstream in("1,\"x\ny\",z\r\n");
  CsvReader reader(in, {});
  const auto record = reader.next();
  ASSERT_TRUE(record);
  EXPECT_EQ(record->raw, "1,\"x\ny\",z");
  EXPECT_FALSE(reader.next());
}

// The loader keeps one CsvRecord for every row (next(CsvRecord&)): what a row leaves in it —
// a longer value, a wider row, a value where the next row has null, a malformed row's code and
// error — must not show in the next.
TEST(CsvReader, OneRecordReusedForEveryRowReadsTheSameAsFreshOnes) {
  const std::string text =
      "id,name,note\n1,a long name that needs the heap,x\n2,b\n3,,\n4,\"q\"\"uote\",\"\"\n5,bad\"quote,y\n6,\"two\nlines\",z\n"
      "7,\"open,w\n8,after,v\n9,last,end";
  auto fingerprint = [](const CsvRecord& record) {
    std::string joined = std::to_string(record.line) + " [" + record.raw + "] " + record.code + ":";
    for (const auto& field : record.fields) joined += "|" + field.value_or("~");
    return joined + "\n";
  };
  std::istringstream fresh_in(text);
  CsvReader fresh(fresh_in, {});
  std::string expected;
  while (auto record = fresh.next()) expected += fingerprint(*record);

  std::istringstream reused_in(text);
  CsvReader reused(reused_in, {});
  CsvRecord record;
  std::string got;
  while (reused.next(record)) got += fingerprint(record);
  EXPECT_EQ(got, expected);
  // And what the fresh reading is: nothing above compares a result with itself only.
  EXPECT_NE(expected.find("\n4 [3,,] :|3|~|~\n"), std::string::npos) << expected;
  EXPECT_NE(expected.find("\n6 [5,bad\"quote,y] csv.quote:\n"), std::string::npos) << expected;
  EXPECT_NE(expected.find("\n9 [7,\"open,w] csv.unterminated_quote:\n"), std::string::npos) << expected;
  EXPECT_NE(expected.find("\n10 [8,after,v] :|8|after|v\n11 [9,last,end] :|9|last|end\n"), std::string::npos) << expected;
  EXPECT_FALSE(reused.next(record));
}

// Lines without quotes are split by the reader itself, not by libcsv: on any text the two must
// read the same records, fields, nulls, lines and raw text. Random lines of delimiters, spaces,
// tabs, carriage returns, empty fields and some quotes, for three delimiters.
TEST(CsvReader, UnquotedLinesSplitDirectlyReadAsLibcsvReadsThem) {
  std::mt19937 random(20261202);
  const std::string alphabet = "ab,,;;\t  \r\xC3\xA9x\"";
  auto fingerprint_all = [](const std::string& text, CsvOptions options) {
    std::istringstream in(text);
    CsvReader reader(in, options);
    CsvRecord record;
    std::string out;
    while (reader.next(record)) {
      out += std::to_string(record.line) + " [" + record.raw + "] " + record.code + ":";
      for (const auto& field : record.fields) out += field ? "|" + *field : "|~";
      out += "\n";
    }
    return out;
  };
  std::size_t direct_lines = 0;
  for (const char delimiter : {',', ';', '\t'}) {
    for (int sample = 0; sample < 300; ++sample) {
      std::string text;
      const int lines = 1 + static_cast<int>(random() % 6);
      for (int line = 0; line < lines; ++line) {
        const int length = static_cast<int>(random() % 12);
        for (int i = 0; i < length; ++i) {
          char c = alphabet[random() % alphabet.size()];
          if (c == '"' && random() % 4 != 0) c = 'q';  // quotes now and then
          text += c;
        }
        if (text.find('"') == std::string::npos) ++direct_lines;
        if (line + 1 < lines || random() % 2 == 0) text += random() % 3 == 0 ? "\r\n" : "\n";
      }
      CsvOptions direct;
      direct.delimiter = delimiter;
      CsvOptions libcsv_only = direct;
      libcsv_only.split_unquoted_lines = false;
      ASSERT_EQ(fingerprint_all(text, direct), fingerprint_all(text, libcsv_only)) << "text: " << ::testing::PrintToString(text);
    }
  }
  EXPECT_GT(direct_lines, 500u);  // most samples did take the direct way
  // And what both give, on lines a person can check.
  EXPECT_EQ(fingerprint_all("a,,b\r\n,\n x ,y\n", {}), "1 [a,,b] :|a|~|b\n2 [,] :|~|~\n3 [ x ,y] :| x |y\n");
}

TEST(ColumnTypes, EachTypeAndItsRefusals) {
  sdk::Value out;
  auto ok = [&](ColumnType type, const char* text) { return !typed_value(type, text, out); };
  auto why = [&](ColumnType type, const char* text) { return typed_value(type, text, out).value_or("(accepted)"); };
  ASSERT_TRUE(ok(ColumnType::integer, "+42"));
  EXPECT_EQ(out.as_int(), 42);
  ASSERT_TRUE(ok(ColumnType::integer, "-7"));
  EXPECT_EQ(out.as_int(), -7);
  EXPECT_EQ(why(ColumnType::integer, "4x"), "not an integer");
  EXPECT_EQ(why(ColumnType::integer, ""), "not an integer");
  EXPECT_EQ(why(ColumnType::integer, "99999999999999999999"), "out of range for a 64-bit integer");
  ASSERT_TRUE(ok(ColumnType::real, "2.5e3"));
  EXPECT_DOUBLE_EQ(out.as_real(), 2500);
  EXPECT_EQ(why(ColumnType::real, "nan"), "not a finite number");
  ASSERT_TRUE(ok(ColumnType::boolean, "Yes"));
  EXPECT_TRUE(out.as_bool());
  ASSERT_TRUE(ok(ColumnType::boolean, "f"));
  EXPECT_FALSE(out.as_bool());
  EXPECT_FALSE(ok(ColumnType::boolean, "maybe"));
  EXPECT_TRUE(ok(ColumnType::date, "2000-02-29"));
  EXPECT_EQ(out.type(), sdk::ValueType::string);
  EXPECT_FALSE(ok(ColumnType::date, "2001-02-29"));
  EXPECT_FALSE(ok(ColumnType::date, "2001-13-01"));
  EXPECT_FALSE(ok(ColumnType::date, "01/02/2001"));
  ASSERT_TRUE(ok(ColumnType::json, "{\"a\": 1}"));
  EXPECT_EQ(out.type(), sdk::ValueType::json);
  EXPECT_FALSE(ok(ColumnType::json, "{a}"));
  ASSERT_TRUE(ok(ColumnType::string, "  x "));
  EXPECT_EQ(out.stored_text(), "  x ");
  EXPECT_EQ(parse_column_type("date"), ColumnType::date);
  EXPECT_FALSE(parse_column_type("varchar"));
}

}  // namespace
}  // namespace etl::plugins::csv_file
