// The pipeline schema's owner (pipeline_schema.hpp) and the README tables (schema_markdown.hpp).

#include <gtest/gtest.h>

#include "pipeline_schema.hpp"
#include "schema_markdown.hpp"

namespace etl::host {
namespace {

using nlohmann::json;

std::vector<PluginSchemaEntry> two_sources_a_sink_and_a_reporter() {
  const json size_schema = json::parse(R"({"type": "object", "properties": {
    "size": {"type": "integer", "minimum": 1}, "name": {"type": "string"},
    "mode": {"type": "string", "enum": ["a", "b"]}}})");
  return {{sdk::PluginKind::source, "gen", {"generator"}, size_schema},
          {sdk::PluginKind::source, "file", {}, json::parse(R"({"type": "object"})")},
          {sdk::PluginKind::sink, "null", {}, json::parse(R"({"type": "object"})")},
          {sdk::PluginKind::reporter, "csv", {}, json::parse(R"({"type": "object"})")},
          {sdk::PluginKind::transform, "map", {}, json::parse(R"({"type": "object"})")}};
}

TEST(PipelineSchema, ValidationSchemaHasEveryStageInline) {
  const json schema = pipeline_validation_schema();
  EXPECT_FALSE(schema.contains("$defs"));
  EXPECT_EQ(schema.dump().find("$ref"), std::string::npos);
  EXPECT_EQ(schema.at("properties").at("source").at("required"), json::array({"plugin"}));
  EXPECT_TRUE(schema.at("properties").at("transforms").at("items").at("properties").contains("when"));
}

TEST(PipelineSchema, EditorSchemaOffersEachPluginOfItsKindByNameAndAlias) {
  const json schema = editor_schema(two_sources_a_sink_and_a_reporter());
  EXPECT_EQ(schema.at("$schema"), "https://json-schema.org/draft/2020-12/schema");
  EXPECT_EQ(schema.at("properties").at("source").at("$ref"), "#/$defs/source");
  const json& sources = schema.at("$defs").at("source").at("oneOf");
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].at("properties").at("plugin").at("enum"), json::array({"gen", "generator"}));
  EXPECT_EQ(sources[1].at("properties").at("plugin").at("enum"), json::array({"file"}));
  EXPECT_EQ(schema.at("$defs").at("sink").at("oneOf").size(), 1u);
  EXPECT_EQ(schema.at("$defs").at("reporter").at("oneOf").size(), 1u);
  // The plain stage definitions are gone; transforms keep their `when`.
  EXPECT_FALSE(schema.at("$defs").contains("stage"));
  EXPECT_FALSE(schema.at("$defs").contains("transform"));
  const json& transforms = schema.at("$defs").at("transform_stage").at("oneOf");
  ASSERT_EQ(transforms.size(), 1u);
  EXPECT_TRUE(transforms[0].at("properties").contains("when"));
}

TEST(PipelineSchema, EditorSchemaLetsAnyTypedValueBeAPlaceholder) {
  const json schema = editor_schema(two_sources_a_sink_and_a_reporter());
  const json& config = schema.at("$defs").at("source").at("oneOf")[0].at("properties").at("config").at("properties");
  // An integer or an enum may be written "${VAR}"; a free string already may.
  ASSERT_TRUE(config.at("size").contains("anyOf"));
  EXPECT_EQ(config.at("size").at("anyOf")[0].at("type"), "integer");
  EXPECT_EQ(config.at("size").at("anyOf")[1].at("pattern"), "\\$\\{");
  EXPECT_TRUE(config.at("mode").contains("anyOf"));
  EXPECT_EQ(config.at("name"), json::parse(R"({"type": "string"})"));
}

TEST(ConfigTable, MarkdownFromASchema) {
  const json schema = json::parse(R"({"type": "object", "required": ["url"], "properties": {
    "url": {"type": "string", "minLength": 1, "description": "Where | to go."},
    "mode": {"type": "string", "enum": ["a", "b"], "default": "a", "description": "How."},
    "retries": {"type": "integer", "minimum": 0, "maximum": 9, "default": 3},
    "token": {"type": "string", "secret": true, "default": ""}}})");
  EXPECT_EQ(config_table_markdown(schema),
            "| Key | Type | Default | Description |\n|---|---|---|---|\n"
            "| `mode` | string, one of `a`, `b` | `\"a\"` | How. |\n"
            "| `retries` | integer, ≥ 0, ≤ 9 | `3` |  |\n"
            "| `token` | string, secret | `\"\"` |  |\n"
            "| `url` | string, required, min length 1 |  | Where \\| to go. |\n");
}

}  // namespace
}  // namespace etl::host
