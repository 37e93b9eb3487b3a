#include "checkpoint.hpp"

namespace etl::host {

void Watermark::settle(std::uint64_t sequence) {
  if (sequence <= value_) return;
  const std::uint64_t index = sequence - value_ - 1;
  if (index >= above_.size()) above_.resize(index + 1, false);
  above_[index] = true;
  while (!above_.empty() && above_.front()) {
    above_.pop_front();
    ++value_;
  }
}

void Checkpoints::resumed_from(std::string position) {
  std::lock_guard lock(mutex_);
  last_text_ = std::move(position);
}

void Checkpoints::yielded(std::uint64_t after_sequence, std::string position) {
  if (position.empty()) return;
  std::lock_guard lock(mutex_);
  if (position == last_text_) return;
  last_text_ = position;
  // A read that yielded nothing moved the position on (a skipped line, a file finished): the
  // newer text replaces the older for the same records.
  if (!positions_.empty() && positions_.back().after_sequence == after_sequence) {
    positions_.back().text = std::move(position);
    return;
  }
  positions_.push_back(SourcePosition{after_sequence, std::move(position)});
}

void Checkpoints::settled(std::uint64_t sequence, sdk::Status status) {
  // Nothing after a held record is committed in this run: those are not counted (the window
  // stays bounded by the records before it still in flight).
  if (held_at_ && sequence >= *held_at_) return;
  if (status == sdk::Status::failed && !commit_past_failed_) {
    held_at_ = sequence;
    return;
  }
  watermark_.settle(sequence);
}

std::optional<SourcePosition> Checkpoints::committable() {
  const std::uint64_t settled_up_to = watermark_.value();  // below any held record by construction
  std::lock_guard lock(mutex_);
  std::optional<SourcePosition> newest;
  while (!positions_.empty() && positions_.front().after_sequence <= settled_up_to) {
    newest = std::move(positions_.front());
    positions_.pop_front();
  }
  return newest;
}

std::size_t Checkpoints::waiting() const {
  std::lock_guard lock(mutex_);
  return positions_.size();
}

}  // namespace etl::host
