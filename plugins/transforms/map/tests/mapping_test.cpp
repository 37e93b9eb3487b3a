// Each map operation on its own, then their fixed order.
#include <gtest/gtest.h>

#include "mapping.hpp"

namespace etl::plugins::map_transform {
namespace {

using nlohmann::json;

sdk::Record record_of(const json& fields) {
  sdk::Record record;
  for (const auto& [name, value] : fields.items()) record.set(name, sdk::from_json_value(value));
  return record;
}

json fields_of(const sdk::Record& record) { return sdk::to_json_object(record.fields()); }

TEST(Mapping, RenameDropKeepSetCopy) {
  auto record = record_of({{"a", "1"}, {"b", "2"}, {"c", "3"}});
  ASSERT_FALSE(Mapping::parse({{"rename", {{"a", "alpha"}}}, {"drop", {"b"}}, {"set", {{"source", "csv"}, {"n", 5}}},
                               {"copy", {{"c2", "c"}}}})
                   .apply(record));
  EXPECT_EQ(fields_of(record), json({{"c", "3"}, {"alpha", "1"}, {"source", "csv"}, {"n", 5}, {"c2", "3"}}));
  EXPECT_EQ(record.get("n")->type(), sdk::ValueType::integer);
  ASSERT_FALSE(Mapping::parse({{"keep", {"n", "alpha", "missing"}}}).apply(record));
  ASSERT_EQ(record.fields().size(), 2u);
  EXPECT_EQ(record.fields()[0].name, "n");
  EXPECT_EQ(record.fields()[1].name, "alpha");
}

TEST(Mapping, TemplatesNeedTheirFields) {
  auto record = record_of({{"name", "Ann"}, {"days", 3}});
  ASSERT_FALSE(Mapping::parse({{"template", {{"message", "Hello, {name}! {{in {days} days}}"}}}}).apply(record));
  EXPECT_EQ(*record.text("message"), "Hello, Ann! {in 3 days}");
  const auto failure = Mapping::parse({{"template", {{"m", "{nobody}"}}}}).apply(record);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->first, "map.template");
  EXPECT_NE(failure->second.find("\"nobody\""), std::string::npos);
  EXPECT_THROW(Template::parse("{open"), std::invalid_argument);
  EXPECT_THROW(Template::parse("close}"), std::invalid_argument);
}

TEST(Mapping, CastsConvertTextFormsOrRefuse) {
  EXPECT_EQ(cast(sdk::Value("42"), "integer"), sdk::Value(std::int64_t{42}));
  EXPECT_EQ(cast(sdk::Value("4.5"), "real"), sdk::Value(4.5));
  EXPECT_EQ(cast(sdk::Value(std::int64_t{1}), "boolean"), sdk::Value(true));
  EXPECT_EQ(cast(sdk::Value(4.0), "integer"), sdk::Value(std::int64_t{4}));
  EXPECT_FALSE(cast(sdk::Value(4.5), "integer"));
  EXPECT_FALSE(cast(sdk::Value("4x"), "integer"));
  EXPECT_EQ(cast(sdk::Value(std::int64_t{7}), "string"), sdk::Value("7"));
  EXPECT_EQ(cast(sdk::Value("{\"a\":1}"), "json")->type(), sdk::ValueType::json);
  EXPECT_EQ(cast(sdk::Value(), "integer"), sdk::Value());
  auto record = record_of({{"id", "x1"}});
  const auto failure = Mapping::parse({{"cast", {{"id", "integer"}}}}).apply(record);
  ASSERT_TRUE(failure);
  EXPECT_EQ(failure->first, "map.cast");
  EXPECT_EQ(failure->second, "field \"id\" is not integer: \"x1\"");
}

TEST(Mapping, ExtractTakesValuesFromNestedJson) {
  auto record = record_of({{"payload", {{"metadata", {{"userId", 17}, {"tags", {"a"}}}}}}});
  ASSERT_FALSE(Mapping::parse({{"extract",
                                {{"user_id", {{"from", "payload"}, {"pointer", "/metadata/userId"}}},
                                 {"tags", {{"from", "payload"}, {"pointer", "/metadata/tags"}}},
                                 {"none", {{"from", "payload"}, {"pointer", "/nope"}}}}}})
                   .apply(record));
  EXPECT_EQ(*record.get("user_id"), sdk::Value(std::int64_t{17}));
  EXPECT_EQ(record.get("tags")->type(), sdk::ValueType::json);
  EXPECT_TRUE(record.get("none")->is_null());
  auto text = record_of({{"payload", "not json"}});
  EXPECT_TRUE(Mapping::parse({{"extract", {{"x", {{"from", "payload"}, {"pointer", "/a"}}}}}}).apply(text));
  EXPECT_THROW(Mapping::parse({{"extract", {{"x", {{"from", "p"}, {"pointer", "no-slash"}}}}}}), std::invalid_argument);
}

TEST(Mapping, OperationsRunInTheirDocumentedOrder) {
  // rename runs before template and cast, and keep last: the new name is what they see.
  auto record = record_of({{"n", "5"}, {"junk", 1}});
  ASSERT_FALSE(Mapping::parse({{"keep", {"count", "label"}},
                               {"cast", {{"count", "integer"}}},
                               {"template", {{"label", "#{count}"}}},
                               {"rename", {{"n", "count"}}}})
                   .apply(record));
  EXPECT_EQ(fields_of(record), json({{"count", 5}, {"label", "#5"}}));
}

}  // namespace
}  // namespace etl::plugins::map_transform
