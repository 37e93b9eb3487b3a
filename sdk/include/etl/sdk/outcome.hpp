// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// What happened to one record: its status, the stage that decided it, a code, a message and
/// optional detail fields.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "etl/sdk/record.hpp"
#include "etl/sdk/version.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

enum class Status : std::uint8_t {
  /// The record is durably written (or, at a transform, deliberately dropped).
  ok,
  /// The record was refused and retrying cannot help: bad input, a failed validation, a
  /// constraint violation, an HTTP 4xx. `code` and `message` say why.
  rejected,
  /// The record could not be written for another reason (connection lost, destination down
  /// past its bound, commit outcome unknown, run stopped). It may be retried in a later run.
  failed,
};

/// Lower-case name used in reports: "ok", "rejected", "failed".
constexpr std::string_view to_string(Status status) noexcept {
  switch (status) {
    case Status::ok: return "ok";
    case Status::rejected: return "rejected";
    case Status::failed: return "failed";
  }
  return "failed";
}

/// Where a record's fate was decided.
enum class Stage : std::uint8_t { source, transform, sink };

/// Lower-case name used in reports: "source", "transform", "sink".
constexpr std::string_view to_string(Stage stage) noexcept {
  switch (stage) {
    case Stage::source: return "source";
    case Stage::transform: return "transform";
    case Stage::sink: return "sink";
  }
  return "sink";
}

/// SQLSTATE 08007 (transaction_resolution_unknown): a `failed` outcome with this code means
/// the row was sent, its connection was lost, and whether its commit happened could not be
/// decided. The row may be in the table. The host counts these in Summary::commit_unknown.
inline constexpr std::string_view kCommitUnknownCode = "08007";

struct Outcome {
  Status status = Status::ok;
  /// Set by the host: a sink never needs to fill it in.
  Stage stage = Stage::sink;
  /// Machine-readable reason, or empty: a SQLSTATE ("23514"), an HTTP status ("404"), or a
  /// plugin's own code ("not_found", "field_count", "validate.regex").
  std::string code;
  /// Human-readable reason; empty for ok.
  std::string message;
  /// What the stage has to say about the record beyond its status: a generated id from
  /// `RETURNING`, an HTTP response body. Reporters show these fields.
  std::vector<Field> detail;

  static Outcome ok() { return Outcome{}; }
  static Outcome ok(std::vector<Field> detail) {
    Outcome outcome;
    outcome.detail = std::move(detail);
    return outcome;
  }
  static Outcome rejected(std::string code, std::string message) {
    return Outcome{Status::rejected, Stage::sink, std::move(code), std::move(message), {}};
  }
  static Outcome failed(std::string message, std::string code = {}) {
    return Outcome{Status::failed, Stage::sink, std::move(code), std::move(message), {}};
  }
  /// `failed` because the row's commit may or may not have happened; `why` says what was lost.
  static Outcome commit_unknown(const std::string& why) {
    return failed("commit outcome unknown: " + why, std::string(kCommitUnknownCode));
  }
  [[nodiscard]] bool is_commit_unknown() const noexcept {
    return status == Status::failed && code == kCommitUnknownCode;
  }
  /// `ok` at stage transform: a transform dropped the record (a filter) — it ended on purpose
  /// and went no further (it is not in the sink). Reports call it "dropped" (status_word()).
  [[nodiscard]] bool is_dropped() const noexcept { return status == Status::ok && stage == Stage::transform; }
  /// The outcome's word in reports: "dropped" for a dropped record, else to_string(status).
  [[nodiscard]] std::string_view status_word() const noexcept { return is_dropped() ? "dropped" : to_string(status); }
};

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
