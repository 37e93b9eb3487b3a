#include <gtest/gtest.h>

#include "printable.hpp"

namespace etl::plugins::stdout_reporter {
namespace {

std::string printable(std::string_view value) {
  std::string out;
  append_printable(out, value);
  return out;
}

TEST(Printable, ControlCharactersAreEscaped) {
  EXPECT_EQ(printable("a\nb"), "a\\nb");
  EXPECT_EQ(printable("a\rOK  b"), "a\\rOK  b");
  EXPECT_EQ(printable("\t"), "\\t");
  EXPECT_EQ(printable("\x1b[2K"), "\\x1b[2K");
  EXPECT_EQ(printable(std::string_view("\0z", 2)), "\\x00z");
  EXPECT_EQ(printable("\x7f"), "\\x7f");
  EXPECT_EQ(printable("\xc2\x9b" "31m"), "\\u009b31m");  // CSI as a C1 control
}

TEST(Printable, EverythingElseIsKept) {
  EXPECT_EQ(printable("UNFvwishxzYsXUUchI4NBw"), "UNFvwishxzYsXUUchI4NBw");
  EXPECT_EQ(printable("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");
  EXPECT_EQ(printable("\xc2\xa0"), "\xc2\xa0");  // U+00A0 is no control
  EXPECT_EQ(printable("\xff"), "\xff");
  EXPECT_EQ(printable("back\\slash"), "back\\slash");
}

}  // namespace
}  // namespace etl::plugins::stdout_reporter
