#pragma once
// When scheduled runs happen: fixed intervals (--every 15m) or cron expressions (--cron).

#include <chrono>
#include <ctime>
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

}  // namespace etl::host
