// COPY text encoding and the line a COPY error names: pure text, no server.

#include <gtest/gtest.h>

#include "copy_text.hpp"

namespace etl::plugins::postgres {
namespace {

TEST(CopyText, DelimitersLineEndsAndBackslashesAreEscaped) {
  std::string out;
  append_copy_row(out, {std::string("a\tb"), std::string("line\nnext\r"), std::string("back\\slash"), std::nullopt});
  EXPECT_EQ(out, "a\\tb\tline\\nnext\\r\tback\\\\slash\t\\N\n");
}

TEST(CopyText, PlainValuesAreCopiedAsTheyAreAndTheOrdinalComesLast) {
  std::string out;
  append_copy_row(out, {std::string("42"), std::string("Zoë"), std::string("")}, 7);
  EXPECT_EQ(out, "42\tZoë\t\t7\n");
  out.clear();
  append_copy_row(out, {std::string("\\N")});  // the text \N, not NULL
  EXPECT_EQ(out, "\\\\N\n");
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
