#pragma once
// Running records through the pipeline's transforms, in order, each with its `when`.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "condition.hpp"
#include "etl/sdk/plugin.hpp"

namespace etl::host {

class TransformChain {
 public:
  struct Stage {
    std::string plugin;
    sdk::Transform* transform = nullptr;
    std::optional<Condition> when;
  };
  /// What the chain tells its caller.
  struct Hooks {
    /// A record that ends in a transform: dropped (ok) or refused (rejected), stage transform.
    std::function<void(sdk::Record, sdk::Outcome)> settle;
    /// The sequence number for a record a transform added.
    std::function<std::uint64_t()> next_sequence;
    /// Records `members` came from source record `root` (fan-out).
    std::function<void(std::uint64_t root, const std::vector<std::uint64_t>& members)> group;
  };

  TransformChain(std::vector<Stage> stages, Hooks hooks) : stages_(std::move(stages)), hooks_(std::move(hooks)) {}

  [[nodiscard]] bool empty() const noexcept { return stages_.empty(); }

  /// Runs `record` through every transform; what goes on to the sink is appended to `out`, in
  /// order. A transform that throws: the records in hand are settled failed, naming it, and a
  /// StageError (stage "transform") is thrown.
  void apply(sdk::Record record, sdk::Batch& out) {
    const std::uint64_t root = record.sequence;
    // The buffers live with the chain: their capacity is reused from record to record.
    sdk::Batch& current = current_;
    sdk::Batch& next = next_;
    sdk::Batch& extra = extra_;
    current.clear();
    current.push_back(std::move(record));
    for (auto& stage : stages_) {
      next.clear();
      for (std::size_t i = 0; i < current.size(); ++i) {
        sdk::Record& item = current[i];
        if (stage.when && !stage.when->matches(item)) {
          next.push_back(std::move(item));
          continue;
        }
        extra.clear();
        sdk::TransformResult result;
        try {
          result = stage.transform->apply(item, extra);
        } catch (...) {
          std::string reason;
          try {
            throw;
          } catch (const std::exception& e) {
            reason = e.what();
          } catch (...) {
            reason = "unknown exception (not derived from std::exception)";
          }
          const StageFailure failure{stage.plugin, reason};
          for (std::size_t j = i; j < current.size(); ++j) fail(std::move(current[j]), failure);
          for (auto& done : next) fail(std::move(done), failure);
          throw failure;
        }
        // Fan-out is grouped before anything of it can settle (the item itself included), so
        // the source is acknowledged once for all of it.
        std::vector<std::uint64_t> members;
        for (auto& more : extra) {
          more.sequence = hooks_.next_sequence();
          if (more.origin.empty()) more.origin = item.origin;
          more.refusal.reset();
          members.push_back(more.sequence);
        }
        if (!members.empty()) {
          members.push_back(root);
          hooks_.group(root, members);
        }
        switch (result.verdict) {
          case sdk::TransformResult::Verdict::keep: next.push_back(std::move(item)); break;
          case sdk::TransformResult::Verdict::drop: {
            sdk::Outcome outcome = sdk::Outcome::ok();
            outcome.code = result.code.empty() ? "dropped" : result.code;
            outcome.message = result.message;
            outcome.stage = sdk::Stage::transform;
            hooks_.settle(std::move(item), std::move(outcome));
            break;
          }
          case sdk::TransformResult::Verdict::refuse: {
            sdk::Outcome outcome = sdk::Outcome::rejected(result.code, result.message);
            outcome.stage = sdk::Stage::transform;
            hooks_.settle(std::move(item), std::move(outcome));
            break;
          }
        }
        for (auto& more : extra) next.push_back(std::move(more));
      }
      current.swap(next);
    }
    for (auto& item : current) out.push_back(std::move(item));
    current.clear();
  }

  /// Thrown by apply() when a transform throws: which one and why.
  struct StageFailure {
    std::string plugin;
    std::string reason;
  };

 private:
  void fail(sdk::Record record, const StageFailure& failure) {
    sdk::Outcome outcome = sdk::Outcome::failed("not processed: transform '" + failure.plugin + "' failed: " + failure.reason);
    outcome.stage = sdk::Stage::transform;
    hooks_.settle(std::move(record), std::move(outcome));
  }

  std::vector<Stage> stages_;
  Hooks hooks_;
  sdk::Batch current_, next_, extra_;  // apply()'s working sets, kept for their capacity
};

}  // namespace etl::host
