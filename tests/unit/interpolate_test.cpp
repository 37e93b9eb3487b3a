#include <gtest/gtest.h>

#include <map>

#include "interpolate.hpp"
#include "test_support.hpp"

namespace etl::host {
namespace {

VariableLookup lookup_in(std::map<std::string, std::string> variables) {
  return [variables = std::move(variables)](const std::string& name) -> std::optional<std::string> {
    const auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

TEST(Interpolate, TextWithoutPlaceholdersIsUnchanged) {
  const auto result = interpolate("plain text", lookup_in({}));
  EXPECT_EQ(result.value, "plain text");
  EXPECT_FALSE(result.substituted);
  EXPECT_TRUE(result.errors.empty());
}

TEST(Interpolate, SubstitutesSetVariables) {
  const auto result = interpolate("https://${HOST}/x?a=${N}", lookup_in({{"HOST", "h.example"}, {"N", "5"}}));
  EXPECT_EQ(result.value, "https://h.example/x?a=5");
  EXPECT_TRUE(result.substituted);
  EXPECT_EQ(result.variables, (std::vector<std::string>{"HOST", "N"}));
}

TEST(Interpolate, UnsetVariableIsAnErrorNamingIt) {
  const auto result = interpolate("${TOKEN_HOST}", lookup_in({}));
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_NE(result.errors[0].find("TOKEN_HOST"), std::string::npos);
}

TEST(Interpolate, DefaultAppliesWhenUnsetOrEmpty) {
  EXPECT_EQ(interpolate("${N:-5}", lookup_in({})).value, "5");
  EXPECT_EQ(interpolate("${N:-5}", lookup_in({{"N", ""}})).value, "5");
  EXPECT_EQ(interpolate("${N:-5}", lookup_in({{"N", "7"}})).value, "7");
  EXPECT_EQ(interpolate("${N:-}", lookup_in({})).value, "");
  EXPECT_TRUE(interpolate("${N:-}", lookup_in({})).errors.empty());
}

TEST(Interpolate, RequiredVariableCarriesTheMessage) {
  const auto result = interpolate("${DB_HOST:?set DB_HOST to the server}", lookup_in({}));
  ASSERT_EQ(result.errors.size(), 1u);
  EXPECT_NE(result.errors[0].find("DB_HOST"), std::string::npos);
  EXPECT_NE(result.errors[0].find("set DB_HOST to the server"), std::string::npos);
  EXPECT_EQ(interpolate("${DB_HOST:?x}", lookup_in({{"DB_HOST", "db"}})).value, "db");
}

TEST(Interpolate, DollarDollarIsALiteralDollar) {
  const auto result = interpolate("cost: $$5 and $x", lookup_in({}));
  EXPECT_EQ(result.value, "cost: $5 and $x");
  EXPECT_TRUE(result.errors.empty());
}

TEST(Interpolate, SyntaxErrorsAreReported) {
  EXPECT_FALSE(interpolate("${UNTERMINATED", lookup_in({})).errors.empty());
  EXPECT_FALSE(interpolate("${1BAD}", lookup_in({})).errors.empty());
  EXPECT_FALSE(interpolate("${A:+x}", lookup_in({{"A", "1"}})).errors.empty());
}

TEST(Interpolate, ReadsSecretsFromFiles) {
  testing::TempDir dir;
  testing::write_file(dir.file("pass"), "s3cret with spaces\n");
  const auto direct = interpolate("${file:" + dir.file("pass") + "}", lookup_in({}));
  EXPECT_EQ(direct.value, "s3cret with spaces");
  EXPECT_TRUE(direct.from_file);
  // The _FILE convention of container images.
  const auto convention = interpolate("${DB_PASS}", lookup_in({{"DB_PASS_FILE", dir.file("pass")}}));
  EXPECT_EQ(convention.value, "s3cret with spaces");
  EXPECT_TRUE(convention.from_file);
  const auto missing = interpolate("${file:/nonexistent/x}", lookup_in({}));
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_NE(missing.errors[0].find("/nonexistent/x"), std::string::npos);
}

}  // namespace
}  // namespace etl::host
