// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Records: the unit of data that flows from a source, through the transforms and the sink, to
/// the reporters.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "etl/sdk/value.hpp"
#include "etl/sdk/version.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// One named, typed value of a record. A null value is not the same as an empty string.
struct Field {
  std::string name;
  Value value;
};

/// The first sequence number of records a transform adds (fan-out): far above any source's.
inline constexpr std::uint64_t kFirstAddedSequence = std::uint64_t{1} << 63;

/// Why a source refused a piece of its input (see Record::refuse_input).
struct Refusal {
  /// A short machine-readable reason, e.g. "field_count", "invalid_utf8", "line_too_long".
  std::string code;
  /// What is wrong, for people, e.g. "3 fields, the header has 5".
  std::string message;
};

/// A record with named fields, kept in the order they were set.
///
/// Field lookup is linear: records are expected to carry a handful to a few dozen fields, for
/// which a scan of contiguous names is faster than any map.
class Record {
 public:
  Record() = default;
  explicit Record(std::vector<Field> fields) : fields_(std::move(fields)) {}

  /// The record's identity in the run, assigned by the host: the records a source's read()
  /// yields are numbered 1, 2, 3, ... in the order yielded over the whole run (refused input
  /// included), so a source knows the number of each record it yields and can match
  /// acknowledgements to them; records a transform adds are numbered from kFirstAddedSequence.
  std::uint64_t sequence = 0;

  /// Where the record came from, for people: "customers.csv:17", "POST /hello/ann". Optional;
  /// reporters show it, and it is kept through transforms.
  std::string origin;

  /// Set by a source for input it could not turn into a record (a CSV row with the wrong
  /// number of fields, invalid UTF-8): the host reports it `rejected` at stage `source` with
  /// this code and message, counts it against settings.max_rejected, and never hands it to a
  /// transform or the sink. Use refuse_input() to make one.
  std::optional<Refusal> refusal;

  /// Refused input: `raw` (the offending text, when it is safe to show; may be empty) goes into
  /// the field "raw", so reject files can be fixed and loaded again.
  static Record refuse_input(std::string origin, std::string raw, std::string code, std::string message) {
    Record record;
    record.origin = std::move(origin);
    record.set("raw", Value(std::move(raw)));
    record.refusal = Refusal{std::move(code), std::move(message)};
    return record;
  }

  /// Sets (adds or replaces) a field.
  void set(std::string_view name, Value value) {
    for (auto& field : fields_) {
      if (field.name == name) {
        field.value = std::move(value);
        return;
      }
    }
    fields_.push_back(Field{std::string(name), std::move(value)});
  }

  /// Removes the field called `name`; false when there was none.
  bool erase(std::string_view name) {
    for (auto it = fields_.begin(); it != fields_.end(); ++it) {
      if (it->name == name) {
        fields_.erase(it);
        return true;
      }
    }
    return false;
  }

  /// The field called `name`, or nullptr when the record has no such field.
  [[nodiscard]] const Field* find(std::string_view name) const noexcept {
    for (const auto& field : fields_) {
      if (field.name == name) return &field;
    }
    return nullptr;
  }
  [[nodiscard]] Field* find(std::string_view name) noexcept {
    for (auto& field : fields_) {
      if (field.name == name) return &field;
    }
    return nullptr;
  }

  /// The value of field `name`, or nullptr when the record has no such field.
  [[nodiscard]] const Value* get(std::string_view name) const noexcept {
    const Field* field = find(name);
    return field != nullptr ? &field->value : nullptr;
  }

  /// The text form of field `name` (see value.hpp); nullopt both for a missing field and for null.
  [[nodiscard]] std::optional<std::string> text(std::string_view name) const {
    const Value* value = get(name);
    return value != nullptr ? value->text() : std::nullopt;
  }

  [[nodiscard]] const std::vector<Field>& fields() const noexcept { return fields_; }
  [[nodiscard]] std::vector<Field>& fields() noexcept { return fields_; }

 private:
  std::vector<Field> fields_;
};

/// Records travel between stages in batches to amortise per-call overhead.
using Batch = std::vector<Record>;

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
