#include <gtest/gtest.h>

#include "pipeline.hpp"

namespace etl::host {
namespace {

using nlohmann::json;

const json kSourceSchema = json::parse(R"({
  "type": "object", "additionalProperties": false, "required": ["url", "size"],
  "properties": {"url": {"type": "string"}, "size": {"type": "integer", "minimum": 1},
                 "verify": {"type": "boolean", "default": true}}})");
const json kSinkSchema = json::parse(R"({
  "type": "object", "additionalProperties": false, "required": ["host"],
  "properties": {"host": {"type": "string"}, "password": {"type": "string", "secret": true, "default": ""}}})");
const json kReporterSchema = json::parse(R"({"type": "object", "additionalProperties": false,
  "properties": {"path": {"type": "string", "default": "out.csv"}}})");

SchemaLookupResult schemas(const std::string& plugin, const std::string& kind) {
  if (plugin == "src" && kind == "source") return {&kSourceSchema, ""};
  if (plugin == "db" && kind == "sink") return {&kSinkSchema, ""};
  if (plugin == "rep" && kind == "reporter") return {&kReporterSchema, ""};
  return {nullptr, "unknown plugin '" + plugin + "'"};
}

VariableLookup variables(std::map<std::string, std::string> values) {
  return [values = std::move(values)](const std::string& name) -> std::optional<std::string> {
    const auto it = values.find(name);
    return it == values.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
}

const std::string kPipeline = R"({
  "source": {"plugin": "src", "config": {"url": "${URL}", "size": "${COUNT:-5}"}},
  "sink": {"plugin": "db", "config": {"host": "${DB_HOST}", "password": "${DB_PASS:-}"}},
  "reporters": [{"plugin": "rep"}, {"plugin": "rep", "config": {"path": "${DIR:-reports}/x.csv"}}]
})";

std::vector<std::string> problems_of(const std::string& text, const std::vector<Override>& overrides,
                                     const VariableLookup& vars) {
  try {
    parse_pipeline("p.json", text, overrides, vars, schemas);
  } catch (const PipelineError& e) {
    return e.problems();
  }
  return {};
}

TEST(Pipeline, ResolvesVariablesDefaultsAndTypes) {
  const auto spec = parse_pipeline("dir/tokens.json", kPipeline, {},
                                   variables({{"URL", "http://u"}, {"DB_HOST", "db"}, {"DB_PASS", "pw"}}), schemas);
  EXPECT_EQ(spec.name, "tokens");
  EXPECT_EQ(spec.source.config.at("size"), 5);
  EXPECT_EQ(spec.source.config.at("verify"), true);
  EXPECT_EQ(spec.sink.config.at("host"), "db");
  EXPECT_EQ(spec.reporters.size(), 2u);
  EXPECT_EQ(spec.reporters[0].config.at("path"), "out.csv");
  EXPECT_EQ(spec.reporters[1].config.at("path"), "reports/x.csv");
  EXPECT_EQ(spec.sink.secrets, (std::vector<std::string>{"pw"}));
  EXPECT_EQ(spec.settings.at("batch_size"), 1000);
}

TEST(Pipeline, NumberFromAVariable) {
  const auto spec = parse_pipeline("p.json", kPipeline, {},
                                   variables({{"URL", "u"}, {"DB_HOST", "db"}, {"COUNT", "20"}}), schemas);
  EXPECT_EQ(spec.source.config.at("size"), 20);
}

TEST(Pipeline, SetOverridesAnyValue) {
  const auto spec = parse_pipeline(
      "p.json", kPipeline,
      {parse_override("source.config.size=20"), parse_override("source.config.verify=false"),
       parse_override("reporters.1.config.path=elsewhere.csv"), parse_override("sink.config.host=${OTHER}")},
      variables({{"URL", "u"}, {"DB_HOST", "db"}, {"COUNT", "7"}, {"OTHER", "other-db"}}), schemas);
  EXPECT_EQ(spec.source.config.at("size"), 20);
  EXPECT_EQ(spec.source.config.at("verify"), false);
  EXPECT_EQ(spec.reporters[1].config.at("path"), "elsewhere.csv");
  EXPECT_EQ(spec.sink.config.at("host"), "other-db");
}

TEST(Pipeline, BadOverridesAreErrors) {
  EXPECT_THROW(parse_override("no-equals-sign"), std::invalid_argument);
  const auto problems = problems_of(kPipeline, {parse_override("reporters.9.config.path=x")},
                                    variables({{"URL", "u"}, {"DB_HOST", "db"}}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("reporters.9"), std::string::npos);
}

TEST(Pipeline, AllProblemsAreListedWithFileAndPointer) {
  const auto problems = problems_of(kPipeline, {parse_override("sink.config.port=5432")},
                                    variables({{"COUNT", "abc"}}));
  // URL unset, DB_HOST unset, size "abc", unknown key port.
  ASSERT_EQ(problems.size(), 4u);
  const std::string all = problems[0] + problems[1] + problems[2] + problems[3];
  EXPECT_NE(all.find("p.json: /source/config/url: variable URL is not set"), std::string::npos);
  EXPECT_NE(all.find("p.json: /sink/config/host: variable DB_HOST is not set"), std::string::npos);
  EXPECT_NE(all.find("p.json: /source/config/size: expected integer, got string \"abc\" (from ${COUNT})"),
            std::string::npos);
  EXPECT_NE(all.find("p.json: /sink/config/port: unknown key \"port\"; allowed keys: host, password"),
            std::string::npos);
}

TEST(Pipeline, MalformedJsonGivesLineAndColumn) {
  const auto problems = problems_of("{\n  \"source\": {,\n}", {}, variables({}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("p.json:2:"), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("malformed JSON"), std::string::npos);
}

TEST(Pipeline, NumbersOutOfRangeAreErrorsNotCrashes) {
  // Found by tests/fuzz/pipeline_fuzz.cpp: nlohmann throws out_of_range, not parse_error.
  const auto problems = problems_of(R"({"source": {"plugin": "src", "config": {"url": "u", "size": 1e999}}})", {},
                                    variables({}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("malformed JSON"), std::string::npos) << problems[0];
  const auto huge_index = problems_of(kPipeline, {parse_override("reporters.99999999999999999999999.config.path=x")},
                                      variables({{"URL", "u"}, {"DB_HOST", "db"}}));
  ASSERT_EQ(huge_index.size(), 1u);
  EXPECT_NE(huge_index[0].find("has no item"), std::string::npos);
}

TEST(Pipeline, StructureErrors) {
  auto problems = problems_of(R"({"source": {"plugin": "src"}, "reporters": [], "extra": 1})", {}, variables({}));
  const std::string all = [&] {
    std::string s;
    for (auto& p : problems) s += p + "\n";
    return s;
  }();
  EXPECT_NE(all.find("/sink: required key \"sink\" is missing"), std::string::npos) << all;
  EXPECT_NE(all.find("/reporters: must have at least 1 item"), std::string::npos) << all;
  EXPECT_NE(all.find("/extra: unknown key"), std::string::npos) << all;
}

TEST(Pipeline, UnknownPluginAndWrongKind) {
  const auto problems = problems_of(R"({"source": {"plugin": "nope"}, "sink": {"plugin": "src"},
                                        "reporters": [{"plugin": "rep"}]})",
                                    {}, variables({}));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("/source/plugin: unknown plugin 'nope'"), std::string::npos);
  EXPECT_NE(problems[1].find("/sink/plugin"), std::string::npos);
}

TEST(Pipeline, MissingFileIsAnError) {
  try {
    load_pipeline("/nonexistent/pipeline.json", {}, variables({}), schemas);
    FAIL() << "expected an error";
  } catch (const PipelineError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/pipeline.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace etl::host
