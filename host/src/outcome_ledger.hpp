#pragma once
// The outcome ledger: every record in flight, its one outcome, the counts, the error budget, and
// the reporter thread that hands outcomes to the reporters and acknowledgements to the source.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "error_budget.hpp"
#include "etl/sdk/plugin.hpp"
#include "runner.hpp"

namespace Poco {
class Logger;
}

namespace etl::host {

/// Keeps every record handed to the sink until its outcome arrives, and passes each outcome to
/// the reporters exactly once, whatever the sink does (late, duplicate or missing outcomes).
///
/// Outcomes are counted (and the error budget judged) when they arrive, on the thread that
/// delivers them; reporters and source acknowledgements run on one reporter thread draining a
/// bounded queue, so a slow report never holds the ledger's lock or a sink thread for longer
/// than it takes to queue, and the SDK's "one thread at a time" promise holds for reporters.
class OutcomeLedger final : public sdk::OutcomeReceiver {
 public:
  struct Counts {
    std::uint64_t ok = 0, dropped = 0, rejected = 0, failed = 0;  // ok: not dropped
    std::uint64_t rejected_at_source = 0, rejected_at_transform = 0, rejected_at_sink = 0;
    std::uint64_t commit_unknown = 0;  // of failed
    [[nodiscard]] std::uint64_t settled() const { return ok + dropped + rejected + failed; }
  };

  /// `acknowledge`, when set, is called on the reporter thread with each source record's final
  /// outcome (see sdk::Source::acknowledge). `queue_limit` bounds outcomes waiting for the
  /// reporters: deliver() blocks while that many wait (a reporter slower than the sink then
  /// sets the pace, at no more than its own cost).
  OutcomeLedger(std::vector<PluginInstance<sdk::Reporter>>& reporters, RunStop& stop, ErrorBudget budget,
                std::size_t queue_limit = 16384);
  ~OutcomeLedger() override;
  OutcomeLedger(const OutcomeLedger&) = delete;
  OutcomeLedger& operator=(const OutcomeLedger&) = delete;

  /// Calls open() on every reporter (on the calling thread, before any record), then starts the
  /// reporter thread.
  void open_reporters(const sdk::RunInfo& run);
  /// Acknowledgements to the source from now on (call before the first record).
  void acknowledge_with(std::function<void(std::uint64_t, const sdk::Outcome&)> acknowledge);
  /// `checkpoint` is called on the reporter thread after each round of reports it has written and
  /// acknowledged, and at least every `period` while none come (call before open_reporters()).
  /// It may call flush_reporters(). It must not throw.
  void checkpoint_with(std::function<void()> checkpoint, std::chrono::milliseconds period);
  /// Makes every reporter that buffers (sdk::FlushesReports) write out what it was given. Only
  /// from the checkpoint hook, or after finish_reporters(). False when a reporter failed.
  bool flush_reporters();

  /// A record handed to the sink: it awaits an outcome from deliver().
  void add(const sdk::Record& record);
  /// Every record of a batch handed to the sink, without copying them: the ledger shares the
  /// batch, which lives until the last of its records is reported.
  void add(const std::shared_ptr<const sdk::Batch>& batch);
  /// Records `members` share one source record, `root` (a transform's fan-out): the source is
  /// acknowledged once, when all of them are settled, with the worst status among them.
  void group(std::uint64_t root, const std::vector<std::uint64_t>& members);

  void deliver(std::uint64_t sequence, sdk::Outcome outcome) noexcept override;
  /// A record settled before the sink (refused input, a transform's verdict): reported now.
  void settle_now(sdk::Record record, sdk::Outcome outcome);

  /// Reports every record still awaiting an outcome as failed, in source order.
  void fail_remaining(const std::string& reason);
  /// Reports records that never reached the sink.
  void fail_unsent(const sdk::Batch& batch, std::size_t from, const std::string& reason);

  [[nodiscard]] Counts counts() const;
  [[nodiscard]] std::size_t pending() const;
  /// Why a reporter failed (the run stops), or empty.
  [[nodiscard]] std::string reporter_error() const;
  /// Why acknowledging the source failed (it threw), or empty: a source that cannot be told
  /// its records' outcomes (an outbox not marked) has failed its run.
  [[nodiscard]] std::string acknowledge_error() const;
  /// Outcomes the sink delivered for records not awaiting one (a second outcome for a record,
  /// or an unknown sequence): a bug in the sink, which the run's exit code reports. The first
  /// outcome of each record stands.
  [[nodiscard]] std::uint64_t stray_outcomes() const;
  /// Waits until every outcome queued so far has been reported and acknowledged.
  void wait_for_reports();
  /// Why the error budget stopped the run, or empty. Checked at every outcome, so a run stops
  /// at the first rejection over the budget, not at the end of a batch.
  [[nodiscard]] std::string budget_error() const;
  /// The budget judged on the final totals (a percentage may only be decidable then).
  void check_budget_at_end();

  /// Waits until the reporters have had every outcome, stops the reporter thread, then calls
  /// finish() on every reporter still working.
  void finish_reporters(const sdk::Summary& summary);

 private:
  /// A record awaiting its outcome or its report: a share of the batch it is in (see add()).
  using RecordRef = std::shared_ptr<const sdk::Record>;
  struct Report {
    RecordRef record;
    sdk::Outcome outcome;
    /// The source record to acknowledge with `acknowledged`, if this outcome completes one.
    std::optional<std::uint64_t> acknowledge;
    sdk::Outcome acknowledged;
  };
  struct Group {
    std::size_t unsettled = 0;
    sdk::Outcome worst;
  };

  /// Counts an outcome and prepares its report; the ledger's mutex is held.
  Report account(RecordRef record, sdk::Outcome outcome);
  void settle_ref(RecordRef record, sdk::Outcome outcome);
  void check_budget(bool final);
  /// Queues a report; blocks while the queue is full. Never called with the ledger's mutex held.
  void enqueue(Report report);
  void reporter_loop();
  void call_reporters(const char* stage, const std::function<void(sdk::Reporter&)>& call);

  std::vector<PluginInstance<sdk::Reporter>>& reporters_;
  RunStop& stop_;
  ErrorBudget budget_;
  Poco::Logger& logger_;
  std::function<void(std::uint64_t, const sdk::Outcome&)> acknowledge_;
  std::function<void()> checkpoint_;
  std::chrono::milliseconds checkpoint_period_{1000};

  mutable std::mutex mutex_;  // pending_, groups_, counts_, budget_error_
  std::unordered_map<std::uint64_t, RecordRef> pending_;
  std::unordered_map<std::uint64_t, std::uint64_t> root_of_;
  std::unordered_map<std::uint64_t, Group> groups_;
  Counts counts_;
  std::uint64_t stray_outcomes_ = 0;
  std::string budget_error_;

  const std::size_t queue_limit_;
  mutable std::mutex queue_mutex_;  // queue_, closing_, reporter_error_
  std::condition_variable queue_not_empty_;
  std::condition_variable queue_not_full_;
  std::condition_variable queue_drained_;
  std::deque<Report> queue_;
  bool closing_ = false;
  bool busy_ = false;  // the reporter thread holds a report taken from the queue
  // Which reporters still work. Without a lock: only call_reporters() touches it, and that runs
  // on one thread at a time (the caller before the reporter thread starts and after it ends).
  std::vector<bool> alive_;
  std::string reporter_error_;
  std::string acknowledge_error_;
  std::thread thread_;
};

}  // namespace etl::host
