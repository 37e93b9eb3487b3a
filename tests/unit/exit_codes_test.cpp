// The exit codes are documented three times over: in exit_codes.hpp, in `etl-host --help` (made
// from its table) and in the README. This keeps the README's table equal to the code's.

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "exit_codes.hpp"
#include "test_support.hpp"

namespace etl::host {
namespace {

TEST(ExitCodes, TheReadmesTableIsTheCodesTable) {
  const std::string readme = etl::testing::read_file(etl::testing::source_dir() + "/README.md");
  const auto section = readme.find("### Exit codes");
  ASSERT_NE(section, std::string::npos);
  const auto end = readme.find("\n### ", section + 1);
  const std::string table = readme.substr(section, end - section);
  std::set<int> documented;
  const std::regex row(R"(\n\| (\d+)(?: / (\d+))? \|)");
  for (std::sregex_iterator it(table.begin(), table.end(), row), last; it != last; ++it) {
    documented.insert(std::stoi((*it)[1]));
    if ((*it)[2].matched) documented.insert(std::stoi((*it)[2]));
  }
  std::set<int> coded;
  for (const auto& [code, meaning] : exit_code::kAll) coded.insert(code);
  EXPECT_EQ(documented, coded);
  // And the table in the header covers every constant.
  for (const int constant : {exit_code::ok, exit_code::internal_error, exit_code::usage, exit_code::invalid_pipeline,
                             exit_code::plugin_error, exit_code::source_failed, exit_code::sink_failed,
                             exit_code::reporter_failed, exit_code::error_budget, exit_code::killed_by_second_signal,
                             exit_code::transform_failed, exit_code::interrupted, exit_code::terminated}) {
    EXPECT_EQ(coded.count(constant), 1u) << constant;
  }
}

}  // namespace
}  // namespace etl::host
