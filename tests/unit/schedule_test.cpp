#include <gtest/gtest.h>

#include "schedule.hpp"

namespace etl::host {
namespace {

using std::chrono::milliseconds;

std::time_t utc(int year, int month, int day, int hour, int minute) {
  std::tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  return timegm(&parts);
}

TEST(Duration, Units) {
  EXPECT_EQ(parse_duration("15m"), milliseconds(15 * 60 * 1000));
  EXPECT_EQ(parse_duration("90s"), milliseconds(90 * 1000));
  EXPECT_EQ(parse_duration("1h30m"), milliseconds(90 * 60 * 1000));
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  for (const char* bad : {"", "15", "m", "5x", "0s", "-5m"}) EXPECT_THROW(parse_duration(bad), ScheduleError) << bad;
}

TEST(Cron, EveryFifteenMinutes) {
  const CronSchedule cron("*/15 * * * *");
  EXPECT_EQ(cron.next_after(utc(2026, 11, 23, 9, 7), false), utc(2026, 11, 23, 9, 15));
  EXPECT_EQ(cron.next_after(utc(2026, 11, 23, 9, 15), false), utc(2026, 11, 23, 9, 30));
  EXPECT_EQ(cron.next_after(utc(2026, 11, 23, 23, 50), false), utc(2026, 11, 24, 0, 0));
}

TEST(Cron, ListsRangesAndSteps) {
  const CronSchedule weekdays("30 8-18/2 * * 1-5");
  // Saturday 28 November 2026 at noon -> Monday 30 November 08:30.
  EXPECT_EQ(weekdays.next_after(utc(2026, 11, 28, 12, 0), false), utc(2026, 11, 30, 8, 30));
  EXPECT_EQ(weekdays.next_after(utc(2026, 11, 30, 8, 30), false), utc(2026, 11, 30, 10, 30));
  const CronSchedule list("0 0 1,15 * *");
  EXPECT_EQ(list.next_after(utc(2026, 11, 2, 0, 0), false), utc(2026, 11, 15, 0, 0));
}

TEST(Cron, SundayIsZeroOrSeven) {
  EXPECT_EQ(CronSchedule("0 12 * * 7").next_after(utc(2026, 11, 23, 0, 0), false), utc(2026, 11, 29, 12, 0));
  EXPECT_EQ(CronSchedule("0 12 * * 0").next_after(utc(2026, 11, 23, 0, 0), false), utc(2026, 11, 29, 12, 0));
}

TEST(Cron, EitherDayFieldMatchesWhenBothAreRestricted) {
  // The 1st of the month or any Monday.
  const CronSchedule cron("0 6 1 * 1");
  EXPECT_EQ(cron.next_after(utc(2026, 11, 24, 0, 0), false), utc(2026, 11, 30, 6, 0));
  EXPECT_EQ(cron.next_after(utc(2026, 11, 30, 6, 0), false), utc(2026, 12, 1, 6, 0));
}

TEST(Cron, BadExpressionsNameTheField) {
  for (const char* bad : {"* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
                          "*/0 * * * *", "5-1 * * * *", "a * * * *"}) {
    EXPECT_THROW(CronSchedule{bad}, ScheduleError) << bad;
  }
  try {
    CronSchedule("* 25 * * *");
    ADD_FAILURE() << "an hour of 25 was accepted";
  } catch (const ScheduleError& e) {
    EXPECT_NE(std::string(e.what()).find("hour"), std::string::npos);
  }
}

TEST(Cron, AnExpressionThatNeverMatchesIsRefusedAtOnce) {
  for (const char* never : {"0 0 30 2 *", "0 0 31 4,6,9,11 *", "* * 30-31 2 *"}) {
    try {
      CronSchedule cron(never);
      ADD_FAILURE() << never << " was accepted";
    } catch (const ScheduleError& e) {
      EXPECT_NE(std::string(e.what()).find("never matches"), std::string::npos) << e.what();
    }
  }
  // 29 February does match, every four years; with a weekday too, either one matches.
  EXPECT_EQ(CronSchedule("0 0 29 2 *").next_after(utc(2026, 3, 1, 0, 0), false), utc(2028, 2, 29, 0, 0));
  EXPECT_EQ(CronSchedule("0 0 30 2 1").next_after(utc(2026, 11, 24, 0, 0), false), utc(2027, 2, 1, 0, 0));
}

TEST(Duration, OverflowingDurationsAreScheduleErrors) {
  for (const char* huge : {"99999999999999999999h", "9223372036854775807ms1s", "200000000h", "36600000d"}) {
    try {
      (void)parse_duration(huge);
      ADD_FAILURE() << huge << " was accepted";
    } catch (const ScheduleError& e) {
      EXPECT_NE(std::string(e.what()).find(huge), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_duration("36500d"), std::chrono::hours(24 * 36500));
}

}  // namespace
}  // namespace etl::host

namespace etl::host {
namespace {

/// A clock that jumps: sleeping moves it to the wake-up time; each run takes `run_seconds`.
class FakeClock final : public ScheduleClock {
 public:
  explicit FakeClock(TimePoint start) : now_(start) {}
  TimePoint now() override { return now_; }
  bool sleep_until(TimePoint until) override {
    if (until > now_) now_ = until;
    return true;
  }
  void advance(std::chrono::milliseconds by) { now_ += by; }

 private:
  TimePoint now_;
};

std::chrono::system_clock::time_point at(int seconds) {
  return std::chrono::system_clock::from_time_t(utc(2026, 12, 1, 10, 0)) + std::chrono::seconds(seconds);
}

TEST(Scheduler, WindowsTileTimeAndAFailedRunsWindowIsCoveredByTheNext) {
  FakeClock clock(at(0));
  Scheduler::Options options;
  options.interval = std::chrono::seconds(15);
  options.max_runs = 5;
  Scheduler scheduler(options, clock);
  std::vector<ScheduledRun> runs;
  const int exit = scheduler.loop(
      [&](const ScheduledRun& run) {
        runs.push_back(run);
        clock.advance(std::chrono::milliseconds(1200));
        return run.number == 2 || run.number == 3 ? 6 : 0;  // runs 2 and 3 fail (the database is down)
      },
      [] { return false; });
  EXPECT_EQ(exit, 0);
  ASSERT_EQ(runs.size(), 5u);
  EXPECT_EQ(runs[0].window_start, at(-15));  // the first: one interval back
  EXPECT_EQ(runs[0].window_end, at(0));
  EXPECT_EQ(runs[1].window_start, at(0));
  EXPECT_EQ(runs[1].window_end, at(15));
  EXPECT_EQ(runs[2].window_start, at(0));  // run 2 failed: its window is run 3's too
  EXPECT_EQ(runs[2].window_end, at(30));
  EXPECT_EQ(runs[3].window_start, at(0));  // and run 3's, run 4's
  EXPECT_EQ(runs[3].window_end, at(45));
  EXPECT_EQ(runs[4].window_start, at(45));  // run 4 succeeded
  EXPECT_EQ(runs[4].window_end, at(60));
}

TEST(Scheduler, ARunThatOverrunsItsSlotDelaysTheNextWithoutAGap) {
  FakeClock clock(at(0));
  Scheduler::Options options;
  options.interval = std::chrono::seconds(10);
  options.max_runs = 3;
  Scheduler scheduler(options, clock);
  std::vector<ScheduledRun> runs;
  scheduler.loop(
      [&](const ScheduledRun& run) {
        runs.push_back(run);
        clock.advance(run.number == 1 ? std::chrono::seconds(25) : std::chrono::seconds(1));
        return 0;
      },
      [] { return false; });
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[1].window_start, runs[0].window_end);
  EXPECT_EQ(runs[1].window_end, at(25));  // started when the first run ended
  EXPECT_EQ(runs[2].window_start, at(25));
  EXPECT_EQ(runs[2].window_end, at(35));
}

TEST(Scheduler, AStopDuringARunEndsTheScheduleWithThatRunsCode) {
  FakeClock clock(at(0));
  Scheduler::Options options;
  options.interval = std::chrono::seconds(10);
  Scheduler scheduler(options, clock);
  int runs = 0;
  const int exit = scheduler.loop([&](const ScheduledRun&) { return ++runs == 2 ? 143 : 0; }, [&] { return runs == 2; });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(exit, 143);
}

TEST(Scheduler, ACronScheduleWaitsForItsMinuteAndItsFirstWindowIsOnePeriod) {
  FakeClock clock(at(7 * 60 + 30));  // 10:07:30
  Scheduler::Options options;
  options.cron.emplace("*/15 * * * *");
  options.max_runs = 2;
  Scheduler scheduler(options, clock);
  std::vector<ScheduledRun> runs;
  scheduler.loop([&](const ScheduledRun& run) { runs.push_back(run); return 0; }, [] { return false; });
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].window_start, at(0));        // 10:00
  EXPECT_EQ(runs[0].window_end, at(15 * 60));     // 10:15
  EXPECT_EQ(runs[1].window_end, at(30 * 60));
}

}  // namespace
}  // namespace etl::host
