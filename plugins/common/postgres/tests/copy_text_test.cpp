// COPY text encoding and the line a COPY error names: pure text, no server.

#include <gtest/gtest.h>

#include <vector>

#include "postgres/copy_text.hpp"

namespace etl::plugins::postgres {
namespace {

/// A line of `values` (nullopt: NULL), with `ordinal` last when given.
std::string line_of(const std::vector<std::optional<std::string>>& values, std::optional<std::size_t> ordinal = {}) {
  std::string out;
  CopyLineWriter line(out);
  for (const auto& value : values) line.value(value ? &*value : nullptr);
  if (ordinal) line.ordinal(*ordinal);
  line.end();
  return out;
}

TEST(CopyText, DelimitersLineEndsAndBackslashesAreEscaped) {
  EXPECT_EQ(line_of({std::string("a\tb"), std::string("line\nnext\r"), std::string("back\\slash"), std::nullopt}),
            "a\\tb\tline\\nnext\\r\tback\\\\slash\t\\N\n");
}

TEST(CopyText, PlainValuesAreCopiedAsTheyAreAndTheOrdinalComesLast) {
  EXPECT_EQ(line_of({std::string("42"), std::string("Zoë"), std::string("")}, 7), "42\tZoë\t\t7\n");
  EXPECT_EQ(line_of({std::string("\\N")}), "\\\\N\n");  // the text \N, not NULL
}

TEST(CopyText, TheLineOfTheRelationLoadedIsRead) {
  EXPECT_EQ(copy_error_line("COPY customers, line 3, column born: \"1999-02-30\"", "customers"), 3u);
  EXPECT_EQ(copy_error_line("COPY customers, line 12: \"1\tx\"", "customers"), 12u);
  EXPECT_EQ(copy_error_line("COPY customers, line 5", "customers"), 5u);
  // A trigger's error: its own context first, the COPY's below.
  EXPECT_EQ(copy_error_line("PL/pgSQL function check_it() line 3 at RAISE\nCOPY etl_stage, line 9", "etl_stage"), 9u);
}

TEST(CopyText, NoLineWhenTheContextSaysNoneForThisRelation) {
  EXPECT_EQ(copy_error_line("", "customers"), std::nullopt);
  EXPECT_EQ(copy_error_line("COPY other, line 3", "customers"), std::nullopt);
  EXPECT_EQ(copy_error_line("COPY customers_archive, line 3", "customers"), std::nullopt);
  EXPECT_EQ(copy_error_line("COPY customers, line x", "customers"), std::nullopt);
  EXPECT_EQ(copy_error_line("COPY customers, line 0", "customers"), std::nullopt);
  EXPECT_EQ(copy_error_line("COPY customers, line 4x", "customers"), std::nullopt);
  EXPECT_EQ(copy_error_line("COPY clients, ligne 3", "clients"), std::nullopt);  // a translated server
}

}  // namespace
}  // namespace etl::plugins::postgres
