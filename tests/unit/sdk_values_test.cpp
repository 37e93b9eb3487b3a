// The SDK 1.0 record model: every value type's text form and JSON form, records, and the
// declarative config map (schema, defaults, parsing) — all plugin-local, header-only code.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace etl::sdk {
namespace {

using nlohmann::json;

TEST(Value, TextFormOfEachType) {
  EXPECT_EQ(Value().text(), std::nullopt);
  EXPECT_EQ(Value(nullptr).type(), ValueType::null);
  EXPECT_EQ(Value(true).text(), "true");
  EXPECT_EQ(Value(false).text(), "false");
  EXPECT_EQ(Value(std::int64_t{-42}).text(), "-42");
  EXPECT_EQ(Value(std::numeric_limits<std::int64_t>::min()).text(), "-9223372036854775808");
  EXPECT_EQ(Value(0.1).text(), "0.1");
  EXPECT_EQ(Value(1e300).text(), "1e+300");
  EXPECT_EQ(Value(std::nan("")).text(), "NaN");
  EXPECT_EQ(Value(-std::numeric_limits<double>::infinity()).text(), "-Infinity");
  EXPECT_EQ(Value("héllo").text(), "héllo");
  EXPECT_EQ(Value(std::string()).text(), "");  // empty is not null
  EXPECT_EQ(Value::bytes(std::string("\x00\xff\x10", 3)).text(), "\\x00ff10");
  EXPECT_EQ(Value::json(R"({"a":[1,2]})").text(), R"({"a":[1,2]})");
  EXPECT_EQ(Value(std::optional<std::string>()).type(), ValueType::null);
  EXPECT_EQ(Value(std::optional<std::string>("x")).text(), "x");
}

TEST(Value, TextViewOnlyWithoutConversion) {
  EXPECT_EQ(Value("abc").text_view(), "abc");
  EXPECT_EQ(Value::json("[]").text_view(), "[]");
  EXPECT_EQ(Value(std::int64_t{1}).text_view(), std::nullopt);
  EXPECT_EQ(Value::bytes("a").text_view(), std::nullopt);
}

TEST(Value, JsonFormOfEachTypeAndBack) {
  EXPECT_EQ(to_json_value(Value()), json(nullptr));
  EXPECT_EQ(to_json_value(Value(true)), json(true));
  EXPECT_EQ(to_json_value(Value(std::int64_t{7})), json(7));
  EXPECT_EQ(to_json_value(Value(2.5)), json(2.5));
  EXPECT_EQ(to_json_value(Value(std::nan(""))), json("NaN"));
  EXPECT_EQ(to_json_value(Value("s")), json("s"));
  EXPECT_EQ(to_json_value(Value::bytes("\x01")), json("\\x01"));
  EXPECT_EQ(to_json_value(Value::json(R"({"a":1})")), json({{"a", 1}}));
  EXPECT_EQ(to_json_value(Value::json("not json")), json("not json"));
  for (const json& document : {json(nullptr), json(true), json(-3), json(2.5), json("t"), json({{"k", {1, 2}}}), json::array()}) {
    EXPECT_EQ(to_json_value(from_json_value(document)), document) << document.dump();
  }
  EXPECT_EQ(from_json_value(json(18446744073709551615ULL)).type(), ValueType::real);
  EXPECT_EQ(from_json_value(json({{"a", 1}})).type(), ValueType::json);
}

TEST(Value, EqualityIsByTypeAndValue) {
  EXPECT_EQ(Value(std::int64_t{1}), Value(std::int64_t{1}));
  EXPECT_FALSE(Value(std::int64_t{1}) == Value("1"));
  EXPECT_FALSE(Value("a") == Value::bytes("a"));
  EXPECT_EQ(Value(), Value(nullptr));
}

TEST(Record, FieldsByNameAndRefusedInput) {
  Record record;
  record.set("a", Value(std::int64_t{1}));
  record.set("b", "x");
  record.set("a", "replaced");
  ASSERT_EQ(record.fields().size(), 2u);
  EXPECT_EQ(record.text("a"), "replaced");
  EXPECT_EQ(record.text("nope"), std::nullopt);
  EXPECT_TRUE(record.erase("a"));
  EXPECT_FALSE(record.erase("a"));
  const Record refused = Record::refuse_input("f.csv:3", "a,b", "field_count", "2 fields, the header has 3");
  ASSERT_TRUE(refused.refusal);
  EXPECT_EQ(refused.refusal->code, "field_count");
  EXPECT_EQ(refused.origin, "f.csv:3");
  EXPECT_EQ(refused.text("raw"), "a,b");
}

TEST(Text, Utf8Validity) {
  EXPECT_EQ(invalid_utf8_at("plain ascii"), std::string_view::npos);
  EXPECT_EQ(invalid_utf8_at("h\xc3\xa9llo \xf0\x9f\x98\x80"), std::string_view::npos);
  EXPECT_EQ(invalid_utf8_at("ab\xff"), 2u);
  EXPECT_EQ(invalid_utf8_at("\xc0\xaf"), 0u);          // overlong
  EXPECT_EQ(invalid_utf8_at("\xed\xa0\x80"), 0u);      // surrogate
  EXPECT_EQ(invalid_utf8_at("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(invalid_utf8_at("x\xe2\x82"), 1u);         // cut short
  EXPECT_EQ(utf8_length("h\xc3\xa9"), 2u);
}

struct Sample {
  std::string name;
  std::string mode = "fast";
  std::int64_t count = 3;
  double ratio = 0.5;
  bool on = true;
  std::vector<std::string> tags;
  std::map<std::string, std::string> headers;
  std::optional<int> limit;
  std::string password;
};

ConfigMap<Sample> sample_map() {
  ConfigMap<Sample> map;
  map.key("name", &Sample::name, "Who.").required().min_length(1);
  map.key("mode", &Sample::mode, "How.").one_of({"fast", "slow"});
  map.key("count", &Sample::count, "How many.").minimum(1).maximum(10);
  map.key("ratio", &Sample::ratio, "Share.").exclusive_minimum(0);
  map.key("on", &Sample::on, "Whether.");
  map.key("tags", &Sample::tags, "Labels.");
  map.key("headers", &Sample::headers, "Extra headers.");
  map.key("limit", &Sample::limit, "Optional cap.");
  map.key("password", &Sample::password, "Secret.").secret();
  return map;
}

TEST(ConfigMap, OneDeclarationGivesTheSchema) {
  const json schema = json::parse(sample_map().schema());
  EXPECT_EQ(schema.at("additionalProperties"), false);
  EXPECT_EQ(schema.at("required"), json({"name"}));
  const json& p = schema.at("properties");
  EXPECT_EQ(p.at("name"), json({{"type", "string"}, {"description", "Who."}, {"minLength", 1}}));
  EXPECT_EQ(p.at("mode").at("enum"), json({"fast", "slow"}));
  EXPECT_EQ(p.at("mode").at("default"), "fast");
  EXPECT_EQ(p.at("count").at("type"), "integer");
  EXPECT_EQ(p.at("count").at("default"), 3);
  EXPECT_EQ(p.at("count").at("maximum"), 10);
  EXPECT_EQ(p.at("ratio").at("type"), "number");
  EXPECT_EQ(p.at("on").at("default"), true);
  EXPECT_EQ(p.at("tags").at("items").at("type"), "string");
  EXPECT_EQ(p.at("headers").at("additionalProperties").at("type"), "string");
  EXPECT_FALSE(p.at("limit").contains("default"));
  EXPECT_EQ(p.at("password").at("secret"), true);
}

TEST(ConfigMap, ParsesIntoTheStructWithDefaultsKept) {
  const Sample parsed = sample_map().parse(json{{"name", "ann"}, {"count", 7}, {"tags", {"a", "b"}}, {"limit", 4},
                                                 {"headers", {{"X-A", "1"}}}}.dump());
  EXPECT_EQ(parsed.name, "ann");
  EXPECT_EQ(parsed.count, 7);
  EXPECT_EQ(parsed.mode, "fast");
  EXPECT_EQ(parsed.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(parsed.limit, 4);
  EXPECT_EQ(parsed.headers.at("X-A"), "1");
  EXPECT_EQ(sample_map().parse(json{{"name", "x"}, {"limit", nullptr}}.dump()).limit, std::nullopt);
}

TEST(ConfigMap, AValueTheMemberCannotHoldIsAConfigErrorNamingTheKey) {
  try {
    (void)sample_map().parse(json{{"name", "x"}, {"count", "many"}}.dump());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "/count");
    EXPECT_NE(std::string(e.what()).find("expected an integer, got string"), std::string::npos) << e.what();
  }
}

TEST(ConfigMap, KeysKeepTheirDeclarationOrderInTheSchema) {
  const std::string schema = sample_map().schema();
  std::vector<std::size_t> at;
  for (const char* key : {"\"name\"", "\"mode\"", "\"count\"", "\"ratio\"", "\"on\"", "\"tags\"", "\"headers\"",
                          "\"limit\"", "\"password\""}) {
    at.push_back(schema.find(key));
    ASSERT_NE(at.back(), std::string::npos) << key;
  }
  EXPECT_TRUE(std::is_sorted(at.begin(), at.end())) << schema;
}

struct Levels {
  int level = 1;
  std::vector<std::string> routes;
};

TEST(ConfigMap, NumericEnumsAndStructuredKeysReadThroughConfigValue) {
  ConfigMap<Levels> map;
  map.key("level", &Levels::level, "One of 1, 2, 4.").one_of_numbers({1, 2, 4});
  map.parse_with("routes", R"({"type": "array", "items": {"type": "object"}})", "Routes.",
                 [](Levels& levels, const ConfigValue& routes) {
                   for (std::size_t i = 0; i < routes.size(); ++i) {
                     levels.routes.push_back(routes[i].at("method").as_string() + " " + routes[i].value<std::string>("path", "/"));
                   }
                 });
  const json schema = json::parse(map.schema());
  EXPECT_EQ(schema.at("properties").at("level").at("enum"), json({1, 2, 4}));
  EXPECT_EQ(schema.at("properties").at("routes").at("items").at("type"), "object");
  const Levels parsed = map.parse(R"({"level": 4, "routes": [{"method": "GET", "path": "/a"}, {"method": "PUT"}]})");
  EXPECT_EQ(parsed.level, 4);
  EXPECT_EQ(parsed.routes, (std::vector<std::string>{"GET /a", "PUT /"}));
  try {
    (void)map.parse(R"({"routes": [{"path": "/a"}]})");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.path(), "/routes");
    EXPECT_NE(std::string(e.what()).find("\"method\" is missing"), std::string::npos) << e.what();
  }
}

TEST(ConfigMap, AMalformedSchemaTextIsReportedNotThrownWhileTheLibraryLoads) {
  struct Bad {
    std::string name;
    static ConfigMap<Bad> config_map() {
      ConfigMap<Bad> map;
      map.key("name", &Bad::name, "Name.").schema("{not json");
      return map;
    }
  };
  const json schema = json::parse(config_detail::schema_text<Bad>());
  ASSERT_TRUE(schema.contains("x-etl-schema-error")) << schema.dump();
  EXPECT_NE(schema.at("x-etl-schema-error").get<std::string>().find("not JSON"), std::string::npos);
}

}  // namespace
}  // namespace etl::sdk
