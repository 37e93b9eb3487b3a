// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// Records: the unit of data that flows from a source, through a sink, to the reporters.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "etl/sdk/version.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

/// One named value of a record. A value may be absent (SQL NULL), which is not the same
/// as an empty string.
struct Field {
  std::string name;
  std::optional<std::string> value;
};

/// A record with named fields, kept in the order the source produced them.
///
/// The token job uses a single field (`token`); a CSV source would produce one field per
/// column. Field lookup is linear: records are expected to have a handful of fields.
class Record {
 public:
  Record() = default;
  explicit Record(std::vector<Field> fields) : fields_(std::move(fields)) {}

  /// Position of the record in the source's output, starting at 1. Assigned by the host
  /// when the source yields the record; it identifies the record in sink outcomes.
  std::uint64_t sequence = 0;

  /// Sets (adds or replaces) a field.
  void set(std::string_view name, std::optional<std::string> value) {
    for (auto& field : fields_) {
      if (field.name == name) {
        field.value = std::move(value);
        return;
      }
    }
    fields_.push_back(Field{std::string(name), std::move(value)});
  }

  /// The field called `name`, or nullptr when the record has no such field.
  [[nodiscard]] const Field* find(std::string_view name) const noexcept {
    for (const auto& field : fields_) {
      if (field.name == name) return &field;
    }
    return nullptr;
  }

  /// The value of field `name`; nullopt both for a missing field and for a null value.
  [[nodiscard]] std::optional<std::string_view> value(std::string_view name) const noexcept {
    const Field* field = find(name);
    if (field == nullptr || !field->value) return std::nullopt;
    return std::string_view(*field->value);
  }

  [[nodiscard]] const std::vector<Field>& fields() const noexcept { return fields_; }

 private:
  std::vector<Field> fields_;
};

/// Records travel between stages in batches to amortise per-call overhead.
using Batch = std::vector<Record>;

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
