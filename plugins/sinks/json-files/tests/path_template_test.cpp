// PathTemplate: names from fields, and no way out of the folder.

#include <gtest/gtest.h>

#include "path_template.hpp"

namespace etl::plugins::json_files {
namespace {

sdk::Record record(std::initializer_list<std::pair<const char*, sdk::Value>> fields) {
  sdk::Record r;
  for (const auto& [name, value] : fields) r.set(name, value);
  return r;
}

std::string expanded(const PathTemplate& t, const sdk::Record& r) {
  auto out = t.expand(r);
  if (auto* path = std::get_if<std::string>(&out)) return *path;
  const auto& refusal = std::get<std::pair<std::string, std::string>>(out);
  return "!" + refusal.first;
}

TEST(PathTemplate, FieldsFillTheName) {
  const PathTemplate t("task_report_{user_id}_{start}_{end}.json");
  EXPECT_EQ(t.fields(), (std::vector<std::string>{"user_id", "start", "end"}));
  EXPECT_EQ(expanded(t, record({{"user_id", sdk::Value(std::int64_t{7})}, {"start", "2026-12-01T10:00:00Z"}, {"end", "x"}})),
            "task_report_7_2026-12-01T10:00:00Z_x.json");
  EXPECT_EQ(expanded(PathTemplate("by-user/{u}/{{literal}}.json"), record({{"u", "ann"}})), "by-user/ann/{literal}.json");
}

TEST(PathTemplate, ValuesThatWouldLeaveTheFolderAreRefused) {
  const PathTemplate t("r_{id}.json");
  EXPECT_EQ(expanded(t, record({{"id", "../../etc/passwd"}})), "!path_escape");
  EXPECT_EQ(expanded(PathTemplate("{id}"), record({{"id", ".."}})), "!path_escape");
  EXPECT_EQ(expanded(t, record({{"id", "a/b"}})), "!path_escape");
  EXPECT_EQ(expanded(t, record({{"id", std::string("a\0b", 3)}})), "!path_escape");
  EXPECT_EQ(expanded(t, record({{"id", ""}})), "!path_escape");
  EXPECT_EQ(expanded(t, record({{"other", "1"}})), "!missing_field");
  EXPECT_EQ(expanded(t, record({{"id", sdk::Value()}})), "!missing_field");
}

TEST(PathTemplate, TemplatesThatLeaveTheFolderOrDoNotParseAreConfigErrors) {
  EXPECT_THROW(PathTemplate("/etc/{x}"), std::invalid_argument);
  EXPECT_THROW(PathTemplate("../{x}"), std::invalid_argument);
  EXPECT_THROW(PathTemplate("a/../../{x}"), std::invalid_argument);
  EXPECT_THROW(PathTemplate("r_{id.json"), std::invalid_argument);
  EXPECT_THROW(PathTemplate("r_{}.json"), std::invalid_argument);
  EXPECT_THROW(PathTemplate(""), std::invalid_argument);
}

}  // namespace
}  // namespace etl::plugins::json_files
