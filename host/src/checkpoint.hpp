#pragma once
// Which source position may be committed: the watermark of contiguous settled records, and the
// positions a source reported after each read, in constant space per in-flight window.

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

#include "etl/sdk/outcome.hpp"

namespace etl::host {

/// The highest sequence number n such that records 1..n all have their final outcome. Records
/// settle in any order; only those above the watermark are remembered, one byte each, so memory
/// is bounded by the records in flight, not by the records seen.
class Watermark {
 public:
  /// Record `sequence` (1-based) is settled. A sequence at or below the watermark, or one given
  /// twice, changes nothing.
  void settle(std::uint64_t sequence);
  [[nodiscard]] std::uint64_t value() const noexcept { return value_; }
  /// Records above the watermark already settled (what the out-of-order window holds).
  [[nodiscard]] std::size_t window() const noexcept { return above_.size(); }

 private:
  std::uint64_t value_ = 0;
  std::deque<bool> above_;  // above_[i]: record value_ + 1 + i is settled
};

/// A position a source reported, and the last record it stands after.
struct SourcePosition {
  std::uint64_t after_sequence = 0;  ///< records 1..after_sequence were yielded before it
  std::string text;                  ///< the source's JSON text (sdk::Resumable::position)
};

/// The positions of a run and the watermark behind them. yielded() is called from the reading
/// thread, settled() and committable() from the reporter thread.
///
/// A record settles when its outcome is final and `ok` or `rejected` (a rejected record is in the
/// reject report). A `failed` record was not stored: by default it holds the watermark for the
/// rest of the run, so the next run reads it again, with what came after it; with
/// `commit_past_failed` it settles like the others (it is then only in the failure report).
class Checkpoints {
 public:
  explicit Checkpoints(bool commit_past_failed = false) : commit_past_failed_(commit_past_failed) {}

  /// The run resumes from `position` (what the store had): yielding it again commits nothing.
  void resumed_from(std::string position);
  /// After a read: records up to `after_sequence` have been yielded, and resuming from
  /// `position` yields the next one. Empty or unchanged positions are ignored.
  void yielded(std::uint64_t after_sequence, std::string position);
  /// The final outcome of source record `sequence`.
  void settled(std::uint64_t sequence, sdk::Status status);
  /// The newest position every record before which is settled, when it is newer than the last
  /// one returned; positions older than it are dropped.
  [[nodiscard]] std::optional<SourcePosition> committable();

  [[nodiscard]] std::uint64_t watermark() const noexcept { return watermark_.value(); }
  /// The first failed record, which holds the watermark (unless commit_past_failed).
  [[nodiscard]] std::optional<std::uint64_t> held_at() const noexcept { return held_at_; }
  /// Positions waiting for the watermark.
  [[nodiscard]] std::size_t waiting() const;

 private:
  const bool commit_past_failed_;
  Watermark watermark_;                  // reporter thread only
  std::optional<std::uint64_t> held_at_;  // reporter thread only
  mutable std::mutex mutex_;              // positions_, last_text_
  std::deque<SourcePosition> positions_;  // oldest first; after_sequence never decreases
  std::string last_text_;                 // the newest position yielded
};

}  // namespace etl::host
