// Each validate rule on its own: what passes, what fails, and the code and message it gives.
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>

#include "rules.hpp"

namespace etl::plugins::validate {
namespace {

using nlohmann::json;

constexpr Day kToday = 20261201;

std::vector<Failure> check(const json& rules, const sdk::Value& value, Day today = kToday) {
  const FieldRules parsed = FieldRules::parse("f", rules);
  sdk::Record record;
  record.set("f", value);
  std::vector<Failure> failures;
  parsed.check(record, today, failures);
  return failures;
}

std::string code_of(const json& rules, const sdk::Value& value) {
  const auto failures = check(rules, value);
  return failures.empty() ? "pass" : failures.front().code;
}

TEST(ValidateRules, Required) {
  const FieldRules rules = FieldRules::parse("name", {{"required", true}});
  std::vector<Failure> failures;
  rules.check(sdk::Record(), kToday, failures);
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].code, "validate.required");
  EXPECT_EQ(failures[0].message, "field \"name\" is required");
  EXPECT_EQ(code_of({{"required", true}}, sdk::Value()), "validate.required");
  EXPECT_EQ(code_of({{"required", true}}, sdk::Value("")), "pass");
  // Without required, a missing field breaks nothing else.
  EXPECT_EQ(code_of({{"regex", "^a$"}}, sdk::Value()), "pass");
}

TEST(ValidateRules, TypeAcceptsTypedValuesAndStringsThatParse) {
  EXPECT_EQ(code_of({{"type", "integer"}}, sdk::Value(std::int64_t{7})), "pass");
  EXPECT_EQ(code_of({{"type", "integer"}}, sdk::Value("-42")), "pass");
  EXPECT_EQ(code_of({{"type", "integer"}}, sdk::Value("4.2")), "validate.type");
  EXPECT_EQ(code_of({{"type", "integer"}}, sdk::Value("")), "validate.type");
  EXPECT_EQ(code_of({{"type", "number"}}, sdk::Value("4.2")), "pass");
  EXPECT_EQ(code_of({{"type", "boolean"}}, sdk::Value("true")), "pass");
  EXPECT_EQ(code_of({{"type", "boolean"}}, sdk::Value("yes")), "validate.type");
  EXPECT_EQ(code_of({{"type", "string"}}, sdk::Value(std::int64_t{1})), "validate.type");
  EXPECT_EQ(code_of({{"type", "json"}}, sdk::Value::json("{}")), "pass");
  EXPECT_EQ(code_of({{"type", "bytes"}}, sdk::Value::bytes("\x01")), "pass");
}

TEST(ValidateRules, RegexLengthEnum) {
  EXPECT_EQ(code_of({{"regex", "^[A-Za-z]+$"}}, sdk::Value("Ann")), "pass");
  const auto failures = check({{"regex", "^[A-Za-z]+$"}}, sdk::Value("Ann1"));
  ASSERT_EQ(failures.size(), 1u);
  EXPECT_EQ(failures[0].code, "validate.regex");
  EXPECT_EQ(failures[0].message, "field \"f\" does not match ^[A-Za-z]+$: \"Ann1\"");
  EXPECT_EQ(code_of({{"min_length", 2}}, sdk::Value("é")), "validate.min_length");  // one character, two bytes
  EXPECT_EQ(code_of({{"max_length", 1}}, sdk::Value("é")), "pass");
  EXPECT_EQ(code_of({{"max_length", 1}}, sdk::Value("ab")), "validate.max_length");
  EXPECT_EQ(code_of({{"enum", {"a", 1}}}, sdk::Value(std::int64_t{1})), "pass");
  EXPECT_EQ(code_of({{"enum", {"a", 1}}}, sdk::Value("b")), "validate.enum");
}

TEST(ValidateRules, MinMax) {
  EXPECT_EQ(code_of({{"min", 0}, {"max", 150}}, sdk::Value("150")), "pass");
  EXPECT_EQ(code_of({{"min", 0}}, sdk::Value(-1.5)), "validate.min");
  EXPECT_EQ(code_of({{"max", 150}}, sdk::Value(std::int64_t{151})), "validate.max");
  EXPECT_EQ(code_of({{"max", 150}}, sdk::Value("old")), "validate.type");
}

TEST(ValidateRules, DatesAndRelativeBounds) {
  EXPECT_EQ(code_of({{"date", "%Y-%m-%d"}}, sdk::Value("2024-02-29")), "pass");
  EXPECT_EQ(code_of({{"date", "%Y-%m-%d"}}, sdk::Value("2023-02-29")), "validate.date");  // not a leap year
  EXPECT_EQ(code_of({{"date", "%Y-%m-%d"}}, sdk::Value("2023-13-01")), "validate.date");
  EXPECT_EQ(code_of({{"date", "%Y-%m-%d"}}, sdk::Value("2023-01-01 junk")), "validate.date");
  EXPECT_EQ(code_of({{"date", "%d/%m/%Y"}}, sdk::Value("31/12/1999")), "pass");
  // before: today means strictly earlier than today.
  EXPECT_EQ(code_of({{"before", "today"}}, sdk::Value("2026-11-30")), "pass");
  EXPECT_EQ(code_of({{"before", "today"}}, sdk::Value("2026-12-01")), "validate.before");
  EXPECT_EQ(code_of({{"before", "tomorrow"}}, sdk::Value("2026-12-01")), "pass");
  EXPECT_EQ(code_of({{"after", "yesterday"}}, sdk::Value("2026-12-01")), "pass");
  EXPECT_EQ(code_of({{"after", "2000-01-01"}}, sdk::Value("1999-12-31")), "validate.after");
  // Month and year ends roll over.
  const auto at_new_year = check({{"before", "tomorrow"}}, sdk::Value("2027-01-01"), 20261231);
  ASSERT_EQ(at_new_year.size(), 1u);
  EXPECT_EQ(at_new_year[0].code, "validate.before");
}

TEST(ValidateRules, ADateMustBeWrittenExactlyAsItsFormatWritesIt) {
  for (const char* loose : {"1990-5-7", "1990-05-7", " 1990-05-17", "\t1990-05-17", "990-05-17", "0990-05-17",
                            "+1990-05-17", "1990-05-17 ", "90-05-17", "19900517"}) {
    EXPECT_EQ(code_of({{"date", "%Y-%m-%d"}}, sdk::Value(loose)), "validate.date") << "\"" << loose << "\"";
  }
  EXPECT_EQ(code_of({{"date", "%Y-%m-%d"}}, sdk::Value("1990-05-07")), "pass");
  EXPECT_EQ(code_of({{"before", "today"}}, sdk::Value("1990-5-7")), "validate.date");  // before implies the date rule
}

TEST(ValidateRules, TimestampsAreRfc3339WithAnOffset) {
  for (const char* good : {"2026-12-01T17:45:00Z", "2026-12-01T17:45:00.123456+01:00", "2024-02-29T00:00:00-12:00",
                           "2026-12-31T23:59:60Z", "2026-12-01t17:45:00z"}) {
    EXPECT_EQ(code_of({{"timestamp", "rfc3339"}}, sdk::Value(good)), "pass") << good;
  }
  for (const char* bad : {"now", "epoch", "infinity", "-infinity", "2026-12-01T17:45:00", "2026-12-01 17:45:00Z",
                          "2026-12-01", "2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2026-12-01T24:00:00Z",
                          "2026-12-01T17:45:00+1:00", "2026-12-01T17:45:00.Z", "2026-12-01T17:45:00Z junk", ""}) {
    EXPECT_EQ(code_of({{"timestamp", "rfc3339"}}, sdk::Value(bad)), "validate.timestamp") << "\"" << bad << "\"";
  }
}

TEST(ValidateRules, TodayIsUtcWhateverTheHostsTimeZone) {
  // 2026-12-01T10:30:00Z: in Kiritimati (UTC+14) already 2 December, in UTC-12 still 30 November.
  static constexpr std::time_t kMorning = 1796121000;
  CachedToday utc(/*utc=*/true, [] { return kMorning; });
  for (const char* zone : {"Pacific/Kiritimati", "Etc/GMT+12", "UTC"}) {
    setenv("TZ", zone, 1);
    tzset();
    CachedToday fresh(true, [] { return kMorning; });
    EXPECT_EQ(fresh.get(), 20261201) << zone;
  }
  setenv("TZ", "Pacific/Kiritimati", 1);
  tzset();
  CachedToday local(/*utc=*/false, [] { return kMorning; });
  EXPECT_EQ(local.get(), 20261202);
  unsetenv("TZ");
  tzset();
  EXPECT_EQ(utc.get(), 20261201);
}

TEST(ValidateRules, EveryBrokenRuleIsListed) {
  const auto failures = check({{"min_length", 5}, {"regex", "^[a-z]+$"}}, sdk::Value("A1"));
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].code, "validate.min_length");
  EXPECT_EQ(failures[1].code, "validate.regex");
}

TEST(ValidateRules, BadRulesAreRefusedNamingTheRule) {
  EXPECT_THROW(FieldRules::parse("f", {{"regex", "("}}), std::invalid_argument);
  try {
    FieldRules::parse("f", {{"before", "someday"}});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("before: \"someday\" is not today"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace etl::plugins::validate
