// The JSON Schema test suite (Debian: json-schema-test-suite, draft 7) run against
// validate_against_schema, for every keyword plugin schemas use. valijson judges; the host's
// own pass (defaults, conversions, secrets) must not change a verdict.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "schema.hpp"

namespace etl::host {
namespace {

using nlohmann::json;

constexpr const char* kSuite = "/usr/share/json-schema-test-suite/tests/draft7";

/// Cases whose verdict differs by design, with why.
const std::set<std::string> kDeviations = {
    // Defaults are filled in before validation (the plugin gets them); a default its own
    // schema refuses would make an empty object invalid. check_schema refuses such schemas.
    "default.json: invalid type for default: still valid when the invalid default is used",
    "default.json: invalid string value for default: still valid when the invalid default is used",
};

struct Tally {
  int passed = 0;
  std::vector<std::string> failed;
};

void run_file(const std::string& name, Tally& tally) {
  std::ifstream in(std::string(kSuite) + "/" + name);
  ASSERT_TRUE(in) << "missing " << kSuite << "/" << name << " (apt-get install json-schema-test-suite)";
  const json groups = json::parse(in);
  for (const auto& group : groups) {
    for (const auto& test : group.at("tests")) {
      const std::string id = name + ": " + group.at("description").get<std::string>() + ": " +
                             test.at("description").get<std::string>();
      if (kDeviations.count(id) != 0) continue;
      json data = test.at("data");
      ValidationResult result;
      validate_against_schema(group.at("schema"), data, "", ValueOrigins{}, result);
      const bool valid = result.diagnostics.empty();
      if (valid == test.at("valid").get<bool>()) {
        ++tally.passed;
      } else {
        tally.failed.push_back(id + (valid ? " (accepted)" : " (refused: " + result.diagnostics.front().message + ")"));
      }
    }
  }
}

TEST(JsonSchemaTestSuite, KeywordsPluginSchemasUse) {
  Tally tally;
  for (const char* file : {"type.json", "properties.json", "required.json", "additionalProperties.json", "items.json",
                           "enum.json", "const.json", "minimum.json", "maximum.json", "exclusiveMinimum.json",
                           "exclusiveMaximum.json", "minLength.json", "maxLength.json", "minItems.json", "maxItems.json",
                           "pattern.json", "anyOf.json", "oneOf.json", "default.json", "boolean_schema.json"}) {
    run_file(file, tally);
  }
  std::string failures;
  for (const auto& failure : tally.failed) failures += "\n  " + failure;
  EXPECT_TRUE(tally.failed.empty()) << tally.failed.size() << " case(s) failed:" << failures;
  EXPECT_GT(tally.passed, 200);
  std::cout << "json-schema-test-suite: " << tally.passed << " passed, " << tally.failed.size() << " failed\n";
}

}  // namespace
}  // namespace etl::host
