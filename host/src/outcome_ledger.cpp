#include "outcome_ledger.hpp"

#include <algorithm>

#include <Poco/Logger.h>

#include "logging.hpp"

namespace etl::host {

namespace {

int severity(sdk::Status status) {
  switch (status) {
    case sdk::Status::ok: return 0;
    case sdk::Status::rejected: return 1;
    case sdk::Status::failed: return 2;
  }
  return 2;
}

}  // namespace

OutcomeLedger::OutcomeLedger(std::vector<PluginInstance<sdk::Reporter>>& reporters, RunStop& stop, ErrorBudget budget,
                             std::size_t queue_limit)
    : reporters_(reporters),
      stop_(stop),
      budget_(std::move(budget)),
      logger_(host_logger()),
      queue_limit_(std::max<std::size_t>(1, queue_limit)) {
  alive_.assign(reporters.size(), true);
}

OutcomeLedger::~OutcomeLedger() {
  {
    std::lock_guard lock(queue_mutex_);
    closing_ = true;
  }
  queue_not_empty_.notify_all();
  queue_not_full_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutcomeLedger::call_reporters(const char* stage, const std::function<void(sdk::Reporter&)>& call) {
  for (std::size_t i = 0; i < reporters_.size(); ++i) {
    if (!alive_[i]) continue;
    try {
      call_plugin(reporters_[i].name, stage, [&] { call(*reporters_[i].object); });
    } catch (const StageError& e) {
      alive_[i] = false;
      {
        std::lock_guard lock(queue_mutex_);
        if (reporter_error_.empty()) reporter_error_ = e.what();
      }
      logger_.error(e.what());
      stop_.request();
    }
  }
}

void OutcomeLedger::open_reporters(const sdk::RunInfo& run) {
  call_reporters("open", [&](sdk::Reporter& reporter) { reporter.open(run); });
  thread_ = std::thread([this] { reporter_loop(); });
}

void OutcomeLedger::acknowledge_with(std::function<void(std::uint64_t, const sdk::Outcome&)> acknowledge) {
  acknowledge_ = std::move(acknowledge);
}

void OutcomeLedger::checkpoint_with(std::function<void()> checkpoint, std::chrono::milliseconds period) {
  checkpoint_ = std::move(checkpoint);
  checkpoint_period_ = std::max(period, std::chrono::milliseconds(10));
}

bool OutcomeLedger::flush_reporters() {
  bool flushed = true;
  for (std::size_t i = 0; i < reporters_.size(); ++i) {
    if (!alive_[i]) {
      flushed = false;
      continue;
    }
    auto* buffering = dynamic_cast<sdk::FlushesReports*>(reporters_[i].object.get());
    if (buffering == nullptr) continue;
    try {
      call_plugin(reporters_[i].name, "flush", [&] { buffering->flush(); });
    } catch (const StageError& e) {
      alive_[i] = false;
      flushed = false;
      {
        std::lock_guard lock(queue_mutex_);
        if (reporter_error_.empty()) reporter_error_ = e.what();
      }
      logger_.error(e.what());
      stop_.request();
    }
  }
  return flushed;
}

void OutcomeLedger::add(const sdk::Record& record) {
  auto copy = std::make_shared<const sdk::Record>(record);
  std::lock_guard lock(mutex_);
  pending_.emplace(record.sequence, std::move(copy));
}

void OutcomeLedger::add(const std::shared_ptr<const sdk::Batch>& batch) {
  std::lock_guard lock(mutex_);
  // Aliasing pointers: each points at its record and owns a share of the batch, so a record
  // costs no copy; the batch's memory goes when its last record has been reported.
  for (const auto& record : *batch) pending_.emplace(record.sequence, RecordRef(batch, &record));
}

void OutcomeLedger::group(std::uint64_t root, const std::vector<std::uint64_t>& members) {
  if (!acknowledge_) return;
  std::lock_guard lock(mutex_);
  Group& group = groups_[root];
  for (const auto member : members) {
    if (root_of_.emplace(member, root).second) ++group.unsettled;
  }
}

OutcomeLedger::Report OutcomeLedger::account(RecordRef record, sdk::Outcome outcome) {
  // Messages may quote a URL or a connection string: reports get them redacted, like logs.
  if (!outcome.message.empty()) outcome.message = Redactor::instance().redact(outcome.message);
  switch (outcome.status) {
    case sdk::Status::ok: ++(outcome.is_dropped() ? counts_.dropped : counts_.ok); break;
    case sdk::Status::rejected:
      ++counts_.rejected;
      switch (outcome.stage) {
        case sdk::Stage::source: ++counts_.rejected_at_source; break;
        case sdk::Stage::transform: ++counts_.rejected_at_transform; break;
        case sdk::Stage::sink: ++counts_.rejected_at_sink; break;
      }
      break;
    case sdk::Status::failed: ++counts_.failed; break;
  }
  if (outcome.is_commit_unknown()) ++counts_.commit_unknown;
  if (outcome.status == sdk::Status::rejected) check_budget(false);

  Report report{std::move(record), std::move(outcome), std::nullopt, {}};
  if (acknowledge_) {
    const auto root = root_of_.find(report.record->sequence);
    if (root == root_of_.end()) {
      report.acknowledge = report.record->sequence;
      report.acknowledged = report.outcome;
    } else {
      Group& group = groups_[root->second];
      // The worst status wins; among equals the last settled speaks (its detail is the freshest).
      if (severity(report.outcome.status) >= severity(group.worst.status)) group.worst = report.outcome;
      const std::uint64_t root_sequence = root->second;
      root_of_.erase(root);
      if (--group.unsettled == 0) {
        report.acknowledge = root_sequence;
        report.acknowledged = std::move(group.worst);
        groups_.erase(root_sequence);
      }
    }
  }
  return report;
}

void OutcomeLedger::deliver(std::uint64_t sequence, sdk::Outcome outcome) noexcept {
  try {
    std::optional<Report> report;
    {
      std::lock_guard lock(mutex_);
      const auto it = pending_.find(sequence);
      if (it == pending_.end()) {
        // Logged for the first few only: a sink that doubles every outcome would flood the log.
        if (++stray_outcomes_ <= 5) {
          logger_.error("the sink delivered an outcome for record " + std::to_string(sequence) +
                        ", which is not awaiting one (ignored: each record is reported once, with its first "
                        "outcome; the run will end with exit code 6)" +
                        (stray_outcomes_ == 5 ? "; further ones are counted, not logged" : ""));
        }
        return;
      }
      RecordRef record = std::move(it->second);
      pending_.erase(it);
      outcome.stage = sdk::Stage::sink;
      report = account(std::move(record), std::move(outcome));
    }
    enqueue(std::move(*report));
  } catch (const std::exception& e) {
    logger_.error(std::string("cannot report an outcome: ") + e.what());
  }
}

std::uint64_t OutcomeLedger::stray_outcomes() const {
  std::lock_guard lock(mutex_);
  return stray_outcomes_;
}

void OutcomeLedger::settle_now(sdk::Record record, sdk::Outcome outcome) {
  settle_ref(std::make_shared<const sdk::Record>(std::move(record)), std::move(outcome));
}

void OutcomeLedger::settle_ref(RecordRef record, sdk::Outcome outcome) {
  std::optional<Report> report;
  {
    std::lock_guard lock(mutex_);
    report = account(std::move(record), std::move(outcome));
  }
  enqueue(std::move(*report));
}

void OutcomeLedger::fail_remaining(const std::string& reason) {
  std::vector<RecordRef> records;
  {
    std::lock_guard lock(mutex_);
    records.reserve(pending_.size());
    for (auto& [sequence, record] : pending_) records.push_back(std::move(record));
    pending_.clear();
  }
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a->sequence < b->sequence; });
  for (auto& record : records) settle_ref(std::move(record), sdk::Outcome::failed(reason));
}

void OutcomeLedger::fail_unsent(const sdk::Batch& batch, std::size_t from, const std::string& reason) {
  for (std::size_t i = from; i < batch.size(); ++i) settle_now(batch[i], sdk::Outcome::failed(reason));
}

OutcomeLedger::Counts OutcomeLedger::counts() const {
  std::lock_guard lock(mutex_);
  return counts_;
}

std::size_t OutcomeLedger::pending() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

std::string OutcomeLedger::acknowledge_error() const {
  std::lock_guard lock(queue_mutex_);
  return acknowledge_error_;
}

std::string OutcomeLedger::reporter_error() const {
  std::lock_guard lock(queue_mutex_);
  return reporter_error_;
}

std::string OutcomeLedger::budget_error() const {
  std::lock_guard lock(mutex_);
  return budget_error_;
}

void OutcomeLedger::check_budget_at_end() {
  std::lock_guard lock(mutex_);
  check_budget(true);
}

void OutcomeLedger::check_budget(bool final) {
  if (!budget_error_.empty() || !budget_.limited()) return;
  const std::uint64_t settled = counts_.settled();
  if (!budget_.exceeded(counts_.rejected, settled, final)) return;
  budget_error_ = "error budget exceeded: " + std::to_string(counts_.rejected) + " of " + std::to_string(settled) +
                  " records rejected, more than settings.max_rejected allows (" + budget_.describe() + ")" +
                  (final ? "" : "; stopping");
  // Stop first, then say so: whoever reacts to the line (a person, a supervisor sending
  // SIGTERM) finds the run already stopping for this reason.
  stop_.request();
  logger_.error(budget_error_);
}

void OutcomeLedger::enqueue(Report report) {
  std::unique_lock lock(queue_mutex_);
  queue_not_full_.wait(lock, [&] { return queue_.size() < queue_limit_ || closing_ || !thread_.joinable(); });
  const bool was_empty = queue_.empty();
  queue_.push_back(std::move(report));
  // The reporter thread waits only on an empty queue: waking it for every record would cost
  // a futex call per record on both sides.
  if (was_empty) queue_not_empty_.notify_one();
}

void OutcomeLedger::reporter_loop() {
  std::unique_lock lock(queue_mutex_);
  std::deque<Report> taken;
  for (;;) {
    if (checkpoint_) {
      // Woken at least every period, so that a quiet pipeline still commits what settled.
      if (!queue_not_empty_.wait_for(lock, checkpoint_period_, [&] { return !queue_.empty() || closing_; })) {
        lock.unlock();
        checkpoint_();
        lock.lock();
        continue;
      }
    } else {
      queue_not_empty_.wait(lock, [&] { return !queue_.empty() || closing_; });
    }
    if (queue_.empty()) break;
    // Everything queued at once: one lock round per batch, not per record.
    taken.swap(queue_);
    busy_ = true;
    queue_not_full_.notify_all();
    lock.unlock();
    for (auto& report : taken) {
      call_reporters("record", [&](sdk::Reporter& reporter) { reporter.record(*report.record, report.outcome); });
      if (report.acknowledge && acknowledge_) {
        try {
          acknowledge_(*report.acknowledge, report.acknowledged);
        } catch (const std::exception& e) {
          logger_.error(std::string("acknowledgement to the source failed: ") + e.what() + "; no more are sent");
          acknowledge_ = nullptr;
          {
            std::lock_guard error_lock(queue_mutex_);
            if (acknowledge_error_.empty()) acknowledge_error_ = std::string("acknowledgement to the source failed: ") + e.what();
          }
          stop_.request();
        }
      }
    }
    taken.clear();
    if (checkpoint_) checkpoint_();
    lock.lock();
    busy_ = false;
    if (queue_.empty()) queue_drained_.notify_all();
  }
  queue_drained_.notify_all();
}

void OutcomeLedger::wait_for_reports() {
  std::unique_lock lock(queue_mutex_);
  if (thread_.joinable()) queue_drained_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

void OutcomeLedger::finish_reporters(const sdk::Summary& summary) {
  {
    std::unique_lock lock(queue_mutex_);
    if (thread_.joinable()) queue_drained_.wait(lock, [&] { return queue_.empty() && !busy_; });
    closing_ = true;
  }
  queue_not_empty_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Reports settled before the thread started (a failure at open) are still written, here.
  std::deque<Report> left;
  {
    std::lock_guard lock(queue_mutex_);
    left.swap(queue_);
  }
  for (auto& report : left) {
    call_reporters("record", [&](sdk::Reporter& reporter) { reporter.record(*report.record, report.outcome); });
    if (report.acknowledge && acknowledge_) {
      try {
        acknowledge_(*report.acknowledge, report.acknowledged);
      } catch (const std::exception& e) {
        logger_.error(std::string("acknowledgement to the source failed: ") + e.what());
        acknowledge_ = nullptr;
        std::lock_guard error_lock(queue_mutex_);
        if (acknowledge_error_.empty()) acknowledge_error_ = std::string("acknowledgement to the source failed: ") + e.what();
      }
    }
  }
  call_reporters("finish", [&](sdk::Reporter& reporter) { reporter.finish(summary); });
}

}  // namespace etl::host
