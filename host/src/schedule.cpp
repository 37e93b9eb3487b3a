#include "schedule.hpp"

#include <cctype>
#include <sstream>
#include <vector>

#include <Poco/Logger.h>

#include "logging.hpp"

namespace etl::host {

std::chrono::milliseconds parse_duration(const std::string& text) {
  if (text.empty()) throw ScheduleError("empty duration; expected e.g. 15m, 90s, 1h30m");
  std::chrono::milliseconds total{0};
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t digits = at;
    while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
    if (digits == at) throw ScheduleError("duration '" + text + "': expected a number at '" + text.substr(at) + "'");
    // Far more than any schedule needs, and far from overflowing milliseconds in 64 bits.
    constexpr long long kMaxMilliseconds = 100LL * 366 * 24 * 3600 * 1000;
    const std::string number = text.substr(at, digits - at);
    const long long value = number.size() > 15 ? kMaxMilliseconds + 1 : std::stoll(number);
    std::size_t unit_end = digits;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) ++unit_end;
    const std::string unit = text.substr(digits, unit_end - digits);
    long long scale = 0;
    if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60 * 1000;
    else if (unit == "h") scale = 3600 * 1000;
    else if (unit == "d") scale = 24 * 3600 * 1000;
    else throw ScheduleError("duration '" + text + "': unknown unit '" + unit + "' (use ms, s, m, h or d)");
    if (value > kMaxMilliseconds / scale || total.count() + value * scale > kMaxMilliseconds) {
      throw ScheduleError("duration '" + text + "' is longer than 100 years");
    }
    total += std::chrono::milliseconds(value * scale);
    at = unit_end;
  }
  if (total.count() <= 0) throw ScheduleError("duration '" + text + "' must be longer than zero");
  return total;
}

namespace {

std::set<int> parse_field(const std::string& field, int low, int high, const std::string& name, bool& restricted) {
  std::set<int> values;
  restricted = field != "*";
  std::stringstream parts(field);
  std::string part;
  auto number = [&](const std::string& text) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) {
      throw ScheduleError("cron " + name + " field '" + field + "': '" + text + "' is not a number");
    }
    const int value = std::stoi(text);
    if (value < low || value > high) {
      throw ScheduleError("cron " + name + " field '" + field + "': " + text + " is outside " +
                          std::to_string(low) + "-" + std::to_string(high));
    }
    return value;
  };
  while (std::getline(parts, part, ',')) {
    int step = 1;
    if (const auto slash = part.find('/'); slash != std::string::npos) {
      step = number(part.substr(slash + 1));
      if (step == 0) throw ScheduleError("cron " + name + " field '" + field + "': a step of 0");
      part = part.substr(0, slash);
    }
    int first = low;
    int last = high;
    if (part != "*") {
      if (const auto dash = part.find('-'); dash != std::string::npos) {
        first = number(part.substr(0, dash));
        last = number(part.substr(dash + 1));
        if (first > last) throw ScheduleError("cron " + name + " field '" + field + "': range " + part + " is backwards");
      } else {
        first = last = number(part);
        if (step != 1) last = high;  // "5/15" means from 5, every 15
      }
    }
    for (int v = first; v <= last; v += step) values.insert(v);
  }
  if (values.empty()) throw ScheduleError("cron " + name + " field is empty");
  return values;
}

}  // namespace

CronSchedule::CronSchedule(const std::string& expression) : expression_(expression) {
  std::istringstream in(expression);
  std::vector<std::string> fields;
  for (std::string field; in >> field;) fields.push_back(field);
  if (fields.size() != 5) {
    throw ScheduleError("cron expression '" + expression + "' has " + std::to_string(fields.size()) +
                        " fields; expected 5: minute hour day-of-month month day-of-week");
  }
  bool unused = false;
  minutes_ = parse_field(fields[0], 0, 59, "minute", unused);
  hours_ = parse_field(fields[1], 0, 23, "hour", unused);
  days_ = parse_field(fields[2], 1, 31, "day-of-month", days_restricted_);
  months_ = parse_field(fields[3], 1, 12, "month", unused);
  weekdays_ = parse_field(fields[4], 0, 7, "day-of-week", weekdays_restricted_);
  if (weekdays_.count(7) != 0) weekdays_.insert(0);
  // Only a day of the month that no month of the expression has can make it never match
  // (with the day of week restricted too, either one matching is enough, and weekdays recur).
  if (days_restricted_ && !weekdays_restricted_) {
    static constexpr int kLongest[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool possible = false;
    for (const int month : months_) possible = possible || *days_.begin() <= kLongest[month - 1];
    if (!possible) {
      throw ScheduleError("cron expression '" + expression + "' never matches: no month it names has day " +
                          std::to_string(*days_.begin()) + (days_.size() > 1 ? " or later" : ""));
    }
  }
}

std::time_t CronSchedule::next_after(std::time_t after, bool local) const {
  std::time_t candidate = after - (after % 60) + 60;
  // Every matching minute recurs within about four years (29 February on a given weekday needs
  // up to 28), so the search is bounded.
  for (int i = 0; i < 60 * 24 * 366 * 28; ++i, candidate += 60) {
    std::tm parts{};
    if (local) {
      localtime_r(&candidate, &parts);
    } else {
      gmtime_r(&candidate, &parts);
    }
    const bool day = days_.count(parts.tm_mday) != 0;
    const bool weekday = weekdays_.count(parts.tm_wday) != 0;
    const bool day_matches = (days_restricted_ && weekdays_restricted_) ? (day || weekday) : (day && weekday);
    if (!day_matches || hours_.count(parts.tm_hour) == 0 || months_.count(parts.tm_mon + 1) == 0) {
      // Nothing in this hour can match: go on at the next whole (local) hour.
      candidate += (59 - parts.tm_min) * 60;
      continue;
    }
    if (minutes_.count(parts.tm_min) != 0) return candidate;
  }
  throw ScheduleError("cron expression '" + expression_ + "' never matches");
}

}  // namespace etl::host

namespace etl::host {

std::string utc_text(std::chrono::system_clock::time_point at) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

Scheduler::Scheduler(Options options, ScheduleClock& clock) : options_(std::move(options)), clock_(clock) {}

ScheduleClock::TimePoint Scheduler::next_slot(ScheduleClock::TimePoint after) const {
  using SystemClock = std::chrono::system_clock;
  if (options_.interval) return after + *options_.interval;
  return SystemClock::from_time_t(options_.cron->next_after(SystemClock::to_time_t(after), options_.local_time));
}

int Scheduler::loop(const std::function<int(const ScheduledRun&)>& run, const std::function<bool()>& stopped) {
  using Seconds = std::chrono::seconds;
  Poco::Logger& logger = host_logger();
  // An interval schedule runs at once; a cron schedule waits for its first matching minute.
  ScheduleClock::TimePoint slot = options_.interval ? clock_.now() : next_slot(clock_.now());
  int last_exit = 0;
  std::optional<ScheduleClock::TimePoint> covered_until;  // the end of the last window a run succeeded on
  for (std::uint64_t number = 1; options_.max_runs == 0 || number <= options_.max_runs; ++number) {
    if (!clock_.sleep_until(slot)) {
      logger.information("schedule: stopped between runs");
      return 0;
    }
    const auto started = clock_.now();
    ScheduledRun scheduled;
    scheduled.number = number;
    scheduled.window_end = std::chrono::floor<Seconds>(slot);
    // The first run: one interval (or cron period) back.
    scheduled.window_start = covered_until.value_or(
        scheduled.window_end - std::chrono::duration_cast<Seconds>(options_.interval ? *options_.interval : next_slot(slot) - slot));
    logger.information("schedule: run " + std::to_string(number) + " starts (window " + utc_text(scheduled.window_start) +
                       " to " + utc_text(scheduled.window_end) + ")");
    last_exit = run(scheduled);
    if (stopped()) {
      logger.information("schedule: stopped during run " + std::to_string(number));
      return last_exit;
    }
    if (last_exit == 0) {
      covered_until = scheduled.window_end;
    } else {
      // A failed run is in its own log lines and metrics; the next run covers its window too.
      covered_until = scheduled.window_start;
      logger.warning("schedule: run " + std::to_string(number) + " ended with exit code " + std::to_string(last_exit) +
                     "; the schedule goes on, and the next run covers its window from " + utc_text(scheduled.window_start));
    }
    // Runs never overlap: a run that outlasts its slot delays the next one.
    ScheduleClock::TimePoint next = next_slot(slot);
    const auto now = clock_.now();
    if (next < now) {
      const auto took = std::chrono::duration_cast<Seconds>(now - started).count();
      logger.warning("schedule: run " + std::to_string(number) + " took " + std::to_string(took) +
                     " s and overran its schedule; the next run starts now instead of at the missed time");
      next = now;
    }
    slot = next;
    if (options_.max_runs == 0 || number < options_.max_runs) logger.information("schedule: next run at " + utc_text(slot));
  }
  return last_exit;
}

}  // namespace etl::host
