#pragma once
// When scheduled runs happen: fixed intervals (--every 15m) or cron expressions (--cron).

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

namespace etl::host {

class ScheduleError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Parses "90s", "15m", "2h", "1h30m", "500ms"; throws ScheduleError naming the text.
std::chrono::milliseconds parse_duration(const std::string& text);

/// A five-field cron expression: minute hour day-of-month month day-of-week. Fields take `*`,
/// numbers, ranges `a-b`, lists `a,b` and steps `*/n`, `a-b/n`; day-of-week 0 or 7 is Sunday.
/// As in cron, when both day fields are restricted a day matching either one matches.
class CronSchedule {
 public:
  explicit CronSchedule(const std::string& expression);
  /// The first matching minute strictly after `after`, in UTC or, when `local` is set, in the
  /// time zone of the TZ variable.
  [[nodiscard]] std::time_t next_after(std::time_t after, bool local) const;
  [[nodiscard]] const std::string& expression() const noexcept { return expression_; }

 private:
  std::string expression_;
  std::set<int> minutes_, hours_, days_, months_, weekdays_;
  bool days_restricted_ = false;
  bool weekdays_restricted_ = false;
};

/// The clock of the schedule loop: the system clock, or a test's.
class ScheduleClock {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  virtual ~ScheduleClock() = default;
  [[nodiscard]] virtual TimePoint now() = 0;
  /// Waits until `until`; false when the schedule was stopped meanwhile.
  virtual bool sleep_until(TimePoint until) = 0;
};

/// One scheduled run: its number and the window it covers, [start, end) in whole seconds.
struct ScheduledRun {
  std::uint64_t number = 0;
  ScheduleClock::TimePoint window_start;
  ScheduleClock::TimePoint window_end;
};

/// `etl-host schedule`: runs at every slot (an interval, from now; or the minutes a cron
/// expression names), never two at once, each covering the window from the end of the last run
/// that succeeded to its own slot, in whole seconds. So windows tile time without a gap or an
/// overlap, and a window whose run failed (a database down) is covered by the next run that
/// succeeds. A run that outlasts its slot delays the next one (started at once).
class Scheduler {
 public:
  struct Options {
    std::optional<std::chrono::milliseconds> interval;
    std::optional<CronSchedule> cron;
    bool local_time = false;  // cron in TZ rather than UTC
    std::uint64_t max_runs = 0;  // 0: until stopped
  };
  Scheduler(Options options, ScheduleClock& clock);

  /// Runs `run` (returning its exit code) at each slot until max_runs or a stop; the last run's
  /// exit code, or 0 when stopped between runs. `stopped` says whether a stop came during a run.
  int loop(const std::function<int(const ScheduledRun&)>& run, const std::function<bool()>& stopped);

 private:
  [[nodiscard]] ScheduleClock::TimePoint next_slot(ScheduleClock::TimePoint after) const;

  Options options_;
  ScheduleClock& clock_;
};

/// 2026-12-01T17:45:00Z
std::string utc_text(std::chrono::system_clock::time_point at);

}  // namespace etl::host
