// SPDX-License-Identifier: MIT
#pragma once
/// @file
/// What happened to one record at the sink.

#include <cstdint>
#include <string>
#include <string_view>

#include "etl/sdk/version.hpp"

namespace etl::sdk {
inline namespace ETL_SDK_ABI_NAMESPACE {

enum class Status : std::uint8_t {
  /// The record is durably written.
  ok,
  /// The destination refused this record and retrying cannot help: a constraint
  /// violation or bad data. `sqlstate` and `message` say why.
  rejected,
  /// The record could not be written for another reason (connection lost, sink gave up,
  /// commit outcome unknown, run stopped). The record may be retried in a later run.
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

/// SQLSTATE 08007 (transaction_resolution_unknown): a `failed` outcome with this code means
/// the row was sent, its connection was lost, and whether its commit happened could not be
/// decided. The row may be in the table. The host counts these in Summary::commit_unknown.
inline constexpr std::string_view kCommitUnknownSqlstate = "08007";

struct Outcome {
  Status status = Status::ok;
  /// Five-character SQLSTATE from the database for `rejected` (e.g. "23514"), or empty.
  std::string sqlstate;
  /// Human-readable reason (the server's primary message for `rejected`); empty for ok.
  std::string message;

  static Outcome ok() { return Outcome{}; }
  static Outcome rejected(std::string sqlstate, std::string message) {
    return Outcome{Status::rejected, std::move(sqlstate), std::move(message)};
  }
  static Outcome failed(std::string message, std::string sqlstate = {}) {
    return Outcome{Status::failed, std::move(sqlstate), std::move(message)};
  }
  /// `failed` because the row's commit may or may not have happened; `why` says what was lost.
  static Outcome commit_unknown(const std::string& why) {
    return failed("commit outcome unknown: " + why, std::string(kCommitUnknownSqlstate));
  }
  [[nodiscard]] bool is_commit_unknown() const noexcept {
    return status == Status::failed && sqlstate == kCommitUnknownSqlstate;
  }
};

}  // namespace ETL_SDK_ABI_NAMESPACE
}  // namespace etl::sdk
