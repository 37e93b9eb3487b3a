#pragma once
// settings.max_rejected: how many rejected records a run may have before it stops.

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace etl::host {

/// A count ("max_rejected": 10) or a percentage of the records settled ("max_rejected": "2.5%").
class ErrorBudget {
 public:
  /// Unlimited.
  ErrorBudget() = default;

  /// Throws std::invalid_argument with a message for the user when `setting` is not a count
  /// or a percentage from 0 to 100; null means unlimited.
  explicit ErrorBudget(const nlohmann::json& setting) {
    if (setting.is_null()) return;
    if (setting.is_number_unsigned() || (setting.is_number_integer() && setting.get<std::int64_t>() >= 0)) {
      count_ = setting.get<std::uint64_t>();
      return;
    }
    if (setting.is_string()) {
      const std::string text = setting.get<std::string>();
      if (text.size() >= 2 && text.back() == '%') {
        const std::string number = text.substr(0, text.size() - 1);
        errno = 0;
        char* end = nullptr;
        const double value = std::strtod(number.c_str(), &end);
        const bool digits_only = number.find_first_not_of("0123456789.") == std::string::npos;
        if (digits_only && end == number.c_str() + number.size() && errno == 0 && std::isfinite(value) &&
            value >= 0 && value <= 100) {
          percent_ = value;
          return;
        }
      }
    }
    throw std::invalid_argument("expected a count of records (e.g. 100) or a percentage from 0 to 100 (e.g. \"2.5%\"), got " +
                                setting.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  /// Whether `rejected` of `settled` is over the budget. A percentage needs a sample: it is
  /// judged from 100 settled records on, or on the final totals.
  [[nodiscard]] bool exceeded(std::uint64_t rejected, std::uint64_t settled, bool final) const {
    if (count_) return rejected > *count_;
    if (percent_ && (final || settled >= 100) && settled > 0) {
      return 100.0 * static_cast<double>(rejected) / static_cast<double>(settled) > *percent_;
    }
    return false;
  }

  [[nodiscard]] bool limited() const noexcept { return count_.has_value() || percent_.has_value(); }

  [[nodiscard]] std::string describe() const {
    if (count_) return std::to_string(*count_) + " rejected record(s)";
    if (percent_) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", *percent_);
      return std::string(text) + "% rejected records";
    }
    return "unlimited";
  }

 private:
  std::optional<std::uint64_t> count_;
  std::optional<double> percent_;
};

}  // namespace etl::host
