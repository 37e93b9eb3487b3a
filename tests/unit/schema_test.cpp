#include <gtest/gtest.h>

#include <map>

#include "schema.hpp"

namespace etl::host {
namespace {

using nlohmann::json;

const json kSchema = json::parse(R"({
  "type": "object",
  "additionalProperties": false,
  "required": ["url", "size"],
  "properties": {
    "url": {"type": "string", "minLength": 1},
    "size": {"type": "integer", "minimum": 1},
    "method": {"type": "string", "enum": ["POST", "GET"], "default": "POST"},
    "verify": {"type": "boolean", "default": true},
    "ratio": {"type": "number"},
    "password": {"type": "string", "secret": true},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
    "statuses": {"type": "array", "items": {"type": "string", "enum": ["ok", "failed"]}},
    "limit": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+%$"}]}
  }
})");

ValidationResult check(json& value, const ValueOrigins& origins = {}) {
  ValidationResult result;
  validate_against_schema(kSchema, value, "/config", origins, result);
  return result;
}

TEST(Schema, ValidConfigGetsDefaults) {
  json value = {{"url", "http://x"}, {"size", 5}};
  const auto result = check(value);
  EXPECT_TRUE(result.diagnostics.empty());
  EXPECT_EQ(value.at("method"), "POST");
  EXPECT_EQ(value.at("verify"), true);
}

TEST(Schema, EveryProblemIsListedWithItsPointer) {
  json value = {{"size", "five"}, {"method", "PUT"}, {"sizee", 1}};
  const auto result = check(value);
  ASSERT_EQ(result.diagnostics.size(), 4u);
  std::map<std::string, std::string> by_pointer;
  for (const auto& d : result.diagnostics) by_pointer[d.pointer] = d.message;
  EXPECT_NE(by_pointer.at("/config/url").find("required"), std::string::npos);
  EXPECT_NE(by_pointer.at("/config/size").find("expected integer"), std::string::npos);
  EXPECT_NE(by_pointer.at("/config/method").find("\"POST\""), std::string::npos);
  const auto& unknown = by_pointer.at("/config/sizee");
  EXPECT_NE(unknown.find("unknown key \"sizee\""), std::string::npos);
  EXPECT_NE(unknown.find("allowed keys: "), std::string::npos);
  EXPECT_NE(unknown.find("size"), std::string::npos);
}

TEST(Schema, TextualValuesAreConvertedToTheSchemaType) {
  json value = {{"url", "http://x"}, {"size", "20"}, {"verify", "false"}, {"ratio", "0.5"}};
  ValueOrigins origins;
  origins.textual = {"/config/size", "/config/verify", "/config/ratio"};
  const auto result = check(value, origins);
  EXPECT_TRUE(result.diagnostics.empty()) << result.diagnostics.front().message;
  EXPECT_EQ(value.at("size"), 20);
  EXPECT_EQ(value.at("verify"), false);
  EXPECT_DOUBLE_EQ(value.at("ratio").get<double>(), 0.5);
}

TEST(Schema, LiteralStringsAreNotConverted) {
  json value = {{"url", "http://x"}, {"size", "20"}};
  const auto result = check(value);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].pointer, "/config/size");
}

TEST(Schema, BadTextualValueNamesItsOrigin) {
  json value = {{"url", "http://x"}, {"size", "abc"}};
  ValueOrigins origins;
  origins.textual = {"/config/size"};
  origins.described["/config/size"] = "from ${TOKEN_COUNT}";
  const auto result = check(value, origins);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_NE(result.diagnostics[0].message.find("\"abc\""), std::string::npos);
  EXPECT_NE(result.diagnostics[0].message.find("${TOKEN_COUNT}"), std::string::npos);
}

TEST(Schema, RangesAndNegativeNumbers) {
  for (const auto& bad : {json(0), json(-1), json(1.5)}) {
    json value = {{"url", "http://x"}, {"size", bad}};
    EXPECT_EQ(check(value).diagnostics.size(), 1u) << bad;
  }
}

TEST(Schema, SecretsAreCollectedAndRedacted) {
  json value = {{"url", "http://x"}, {"size", 1}, {"password", "p@ss"}};
  const auto result = check(value);
  EXPECT_EQ(result.secrets, (std::vector<std::string>{"p@ss"}));
  const json redacted = redact_secrets(kSchema, value);
  EXPECT_EQ(redacted.at("password"), "***");
  EXPECT_EQ(redacted.at("url"), "http://x");
}

TEST(Schema, NestedObjectsArraysAndAnyOf) {
  json value = {{"url", "u"}, {"size", 1}, {"headers", {{"X-A", 1}}}, {"statuses", {"ok", "bad"}}, {"limit", "5%"}};
  const auto result = check(value);
  ASSERT_EQ(result.diagnostics.size(), 2u);
  EXPECT_EQ(result.diagnostics[0].pointer, "/config/headers/X-A");
  EXPECT_EQ(result.diagnostics[1].pointer, "/config/statuses/1");
  json wrong_limit = {{"url", "u"}, {"size", 1}, {"limit", "five"}};
  EXPECT_EQ(check(wrong_limit).diagnostics.size(), 1u);
}

TEST(Schema, CheckSchemaRejectsUnknownTypes) {
  EXPECT_TRUE(check_schema(kSchema).empty());
  EXPECT_FALSE(check_schema(json::parse(R"({"type": "object", "properties": {"a": {"type": "int"}}})")).empty());
  EXPECT_FALSE(check_schema(json::parse(R"({"type": "string"})")).empty());
  // A default its own schema refuses would make every config without the key invalid.
  const auto bad_default = check_schema(json::parse(R"({"type": "object", "properties": {"n": {"type": "integer", "default": "x"}}})"));
  ASSERT_EQ(bad_default.size(), 1u);
  EXPECT_NE(bad_default[0].find("#/properties/n: the default \"x\" does not pass its own schema"), std::string::npos) << bad_default[0];
}

TEST(Schema, AnUnknownKeyGetsADidYouMean) {
  json value = {{"url", "u"}, {"sise", 1}, {"zzzzzz", 2}};
  const auto result = check(value);
  std::map<std::string, std::string> by_pointer;
  for (const auto& d : result.diagnostics) by_pointer[d.pointer] = d.message;
  EXPECT_NE(by_pointer.at("/config/sise").find("unknown key \"sise\" (did you mean \"size\"?)"), std::string::npos)
      << by_pointer.at("/config/sise");
  EXPECT_EQ(by_pointer.at("/config/zzzzzz").find("did you mean"), std::string::npos) << by_pointer.at("/config/zzzzzz");
}

TEST(Schema, ASecretOfTheWrongTypeIsNotShown) {
  json value = {{"url", "u"}, {"size", 1}, {"password", 918273645}};
  const auto result = check(value);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].message, "expected string, got integer");
}

TEST(Schema, IntegersOutOfRangeAreNotIntegers) {
  json value = {{"url", "u"}, {"size", 1e30}};
  const auto result = check(value);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].message, "expected integer, got number 1e+30");
}

TEST(Schema, StringsMustBeUtf8) {
  // Found by tests/fuzz/pipeline_fuzz.cpp: printing such a value used to throw.
  json value = {{"url", "http://x\xff"}, {"size", 1}, {"method", "P\xc3"}};
  const auto result = check(value);
  // method: not one of the allowed values, and not UTF-8; url: not UTF-8.
  ASSERT_EQ(result.diagnostics.size(), 3u);
  EXPECT_NE(result.diagnostics[0].message.find("must be one of"), std::string::npos);
  EXPECT_NE(result.diagnostics[1].message.find("not valid UTF-8"), std::string::npos);
  EXPECT_EQ(result.diagnostics[2].pointer, "/config/url");
  EXPECT_NE(result.diagnostics[2].message.find("not valid UTF-8"), std::string::npos);
  json fine = {{"url", "http://x/\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"}, {"size", 1}};
  EXPECT_TRUE(check(fine).diagnostics.empty());
}

TEST(Schema, BytesThatAreNoUtf8NeverReachTheValidatorsDecoder) {
  // Found by the pipeline fuzzer: valijson's UTF-8 decoder (minLength, pattern) read out of
  // bounds on these bytes (UBSan: utf8_utils.hpp, index 24 out of bounds); the run is refused
  // for the bytes, and valijson sees a copy with U+FFFD in their place.
  json value = {{"url", std::string("\x8d\x96\x85\x96\xff\xff\xff\xff\xb1\xff*\xff\x01", 13)}, {"size", 1}};
  const auto result = check(value);
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(result.diagnostics[0].pointer, "/config/url");
  EXPECT_NE(result.diagnostics[0].message.find("not valid UTF-8"), std::string::npos);
}

TEST(Schema, PointerTokensAreEscaped) {
  EXPECT_EQ(pointer_token("a/b~c"), "a~1b~0c");
}

}  // namespace
}  // namespace etl::host
