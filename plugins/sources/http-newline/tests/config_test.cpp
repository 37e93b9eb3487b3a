// Config checks for http-newline: a good config, and bad ones caught by the schema or the plugin.

#include <gtest/gtest.h>

#include "plugin_harness.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

TEST(HttpNewlineConfig, GoodConfigGetsDefaultsAndCreatesTheSource) {
  const auto plugin = bundled_plugin("http-newline");
  EXPECT_EQ(plugin.kind, sdk::PluginKind::source);
  const auto checked = check_config(plugin, {{"url", "https://provider.example/x"}, {"size", 5}});
  EXPECT_TRUE(checked.problems.empty()) << checked.problems_text();
  EXPECT_EQ(checked.config.at("method"), "POST");
  EXPECT_EQ(checked.config.at("max_per_request"), 455902);
  EXPECT_EQ(checked.config.at("body"), "{}");
  EXPECT_EQ(checked.config.at("field"), "token");
  EXPECT_EQ(checked.config.at("tls_verify"), true);
  auto source = create_plugin<sdk::Source>(plugin, {{"url", "https://provider.example/x"}, {"size", 5}});
  EXPECT_EQ(source.object->fields(), std::vector<std::string>{"token"});
  EXPECT_EQ(source.object->expected(), 5u);
}

TEST(HttpNewlineConfig, BadConfigsAreRefusedNamingTheKey) {
  const auto plugin = bundled_plugin("http-newline");
  const std::vector<std::pair<json, std::string>> cases = {
      {json{{"size", 5}}, "/url"},
      {json{{"url", "http://x/"}, {"size", 0}}, "/size"},
      {json{{"url", "http://x/"}, {"size", -1}}, "/size"},
      {json{{"url", "http://x/"}, {"size", "abc"}}, "/size"},
      {json{{"url", "ftp://x/"}, {"size", 5}}, "/url"},
      {json{{"url", "http://x/"}, {"size", 5}, {"method", "DELETE"}}, "/method"},
      {json{{"url", "http://x/"}, {"size", 5}, {"timeout", 0}}, "/timeout"},
      {json{{"url", "http://x/"}, {"size", 5}, {"headers", {{"X", 1}}}}, "/headers/X"},
      {json{{"url", "http://x/"}, {"size", 5}, {"verify", false}}, "/verify"},
  };
  for (const auto& [config, pointer] : cases) {
    const auto checked = check_config(plugin, config);
    ASSERT_EQ(checked.problems.size(), 1u) << config << "\n" << checked.problems_text();
    EXPECT_EQ(checked.problems[0].pointer, pointer) << config;
  }
}

TEST(HttpNewlineConfig, UrlWithoutHostIsRefusedByThePlugin) {
  const auto plugin = bundled_plugin("http-newline");
  try {
    create_plugin<sdk::Source>(plugin, {{"url", "http://"}, {"size", 5}});
    FAIL() << "expected a ConfigError";
  } catch (const sdk::ConfigError& e) {
    EXPECT_EQ(e.path(), "/url");
  }
}

}  // namespace
}  // namespace etl::testing
