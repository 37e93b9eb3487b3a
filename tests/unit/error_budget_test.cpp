#include <gtest/gtest.h>

#include "error_budget.hpp"

namespace etl::host {
namespace {

using nlohmann::json;

TEST(ErrorBudget, CountsAndPercentages) {
  EXPECT_FALSE(ErrorBudget(json()).limited());
  const ErrorBudget count(json(10));
  EXPECT_FALSE(count.exceeded(10, 10, false));
  EXPECT_TRUE(count.exceeded(11, 11, false));
  const ErrorBudget percent(json("2.5%"));
  EXPECT_FALSE(percent.exceeded(50, 60, false)) << "judged from 100 records on";
  EXPECT_TRUE(percent.exceeded(50, 60, true)) << "or at the end";
  EXPECT_FALSE(percent.exceeded(2, 100, false));
  EXPECT_TRUE(percent.exceeded(3, 100, false));
  EXPECT_EQ(percent.describe(), "2.5% rejected records");
  EXPECT_TRUE(ErrorBudget(json("100%")).limited());
}

TEST(ErrorBudget, BadSettingsAreRefusedWithAMessage) {
  for (const json& bad : {json(-1), json("400000000000000000000000000000000000000%"), json("101%"), json("%"),
                         json("1e3%"), json("-1%"), json("ten"), json(1.5), json(true)}) {
    try {
      ErrorBudget budget(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("percentage from 0 to 100"), std::string::npos) << e.what();
    }
  }
  std::string nines(400, '9');
  EXPECT_THROW(ErrorBudget(json(nines + "%")), std::invalid_argument);
}

}  // namespace
}  // namespace etl::host
