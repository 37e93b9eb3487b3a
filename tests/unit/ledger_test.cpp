// The host's record flow in units: `when` conditions, the transform chain (verdicts, fan-out,
// a throwing transform), and the outcome ledger (counts by stage, acknowledgements once per
// source record with the worst status of a fan-out, reporters on their own thread).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "outcome_ledger.hpp"
#include "schema.hpp"
#include "transform_chain.hpp"

namespace etl::host {
namespace {

using nlohmann::json;

sdk::Record record_of(std::uint64_t sequence, const std::string& field, sdk::Value value) {
  sdk::Record record;
  record.sequence = sequence;
  record.set(field, std::move(value));
  return record;
}

TEST(Condition, EqualsInExists) {
  const auto equals = Condition::from_json({{"field", "event"}, {"equals", "created"}});
  EXPECT_TRUE(equals.matches(record_of(1, "event", "created")));
  EXPECT_FALSE(equals.matches(record_of(1, "event", "deleted")));
  EXPECT_FALSE(equals.matches(record_of(1, "other", "created")));
  const auto number = Condition::from_json({{"field", "n"}, {"in", {1, "2"}}});
  EXPECT_TRUE(number.matches(record_of(1, "n", sdk::Value(std::int64_t{1}))));
  EXPECT_TRUE(number.matches(record_of(1, "n", "2")));
  EXPECT_FALSE(number.matches(record_of(1, "n", "3")));
  const auto null = Condition::from_json({{"field", "n"}, {"equals", nullptr}});
  EXPECT_TRUE(null.matches(record_of(1, "m", "x")));
  EXPECT_TRUE(null.matches(record_of(1, "n", sdk::Value())));
  const auto exists = Condition::from_json({{"field", "email"}, {"exists", false}});
  EXPECT_TRUE(exists.matches(record_of(1, "name", "x")));
  EXPECT_FALSE(exists.matches(record_of(1, "email", "a@b")));
  EXPECT_THROW(Condition::from_json({{"field", "n"}, {"equals", {{"a", 1}}}}), std::invalid_argument);
}

/// A transform for the chain's tests: splits "a+b" into two records, drops "drop", refuses
/// "bad", throws on "boom", upper-cases the rest's first letter.
class ScriptedTransform final : public sdk::Transform {
 public:
  sdk::TransformResult apply(sdk::Record& record, sdk::Batch& extra) override {
    std::string text = *record.text("v");
    if (text == "boom") throw std::runtime_error("exploded");
    if (text == "drop") return sdk::TransformResult::drop();
    if (text == "bad") return sdk::TransformResult::refuse("scripted.bad", "bad value");
    if (const auto plus = text.find('+'); plus != std::string::npos) {
      sdk::Record second;
      second.set("v", text.substr(plus + 1));
      extra.push_back(std::move(second));
      record.set("v", text.substr(0, plus));
    }
    return sdk::TransformResult::keep();
  }
};

struct ChainHarness {
  ScriptedTransform transform;
  std::vector<std::pair<sdk::Record, sdk::Outcome>> settled;
  std::vector<std::pair<std::uint64_t, std::vector<std::uint64_t>>> groups;
  std::uint64_t next = 100;
  TransformChain chain{{{"scripted", &transform, std::nullopt}},
                       {[this](sdk::Record r, sdk::Outcome o) { settled.emplace_back(std::move(r), std::move(o)); },
                        [this] { return ++next; },
                        [this](std::uint64_t root, const std::vector<std::uint64_t>& m) { groups.emplace_back(root, m); }}};
};

TEST(TransformChain, VerdictsFanOutAndOrder) {
  ChainHarness h;
  sdk::Batch out;
  h.chain.apply(record_of(1, "v", "x+y"), out);
  h.chain.apply(record_of(2, "v", "drop"), out);
  h.chain.apply(record_of(3, "v", "bad"), out);
  h.chain.apply(record_of(4, "v", "z"), out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(*out[0].text("v"), "x");
  EXPECT_EQ(out[0].sequence, 1u);
  EXPECT_EQ(*out[1].text("v"), "y");
  EXPECT_EQ(out[1].sequence, 101u);
  EXPECT_EQ(out[2].sequence, 4u);
  ASSERT_EQ(h.groups.size(), 1u);
  EXPECT_EQ(h.groups[0].first, 1u);
  EXPECT_EQ(h.groups[0].second, (std::vector<std::uint64_t>{101, 1}));
  ASSERT_EQ(h.settled.size(), 2u);
  EXPECT_EQ(h.settled[0].second.status, sdk::Status::ok);
  EXPECT_EQ(h.settled[0].second.code, "dropped");
  EXPECT_EQ(h.settled[0].second.stage, sdk::Stage::transform);
  EXPECT_EQ(h.settled[1].second.status, sdk::Status::rejected);
  EXPECT_EQ(h.settled[1].second.code, "scripted.bad");
  EXPECT_EQ(h.settled[1].second.stage, sdk::Stage::transform);
}

TEST(TransformChain, AConditionLetsOtherRecordsPass) {
  ScriptedTransform transform;
  std::vector<sdk::Outcome> settled;
  std::uint64_t next = 0;
  TransformChain chain({{"scripted", &transform, Condition::from_json({{"field", "kind"}, {"equals", "checked"}})}},
                       {[&](sdk::Record, sdk::Outcome o) { settled.push_back(o); }, [&] { return ++next; },
                        [](std::uint64_t, const std::vector<std::uint64_t>&) {}});
  sdk::Batch out;
  sdk::Record unchecked = record_of(1, "v", "bad");
  chain.apply(unchecked, out);
  sdk::Record checked = record_of(2, "v", "bad");
  checked.set("kind", "checked");
  chain.apply(checked, out);
  EXPECT_EQ(out.size(), 1u);
  ASSERT_EQ(settled.size(), 1u);
  EXPECT_EQ(settled[0].status, sdk::Status::rejected);
}

TEST(TransformChain, AThrowingTransformFailsTheRecordAndNamesItself) {
  ChainHarness h;
  sdk::Batch out;
  try {
    h.chain.apply(record_of(7, "v", "boom"), out);
    FAIL() << "expected a StageFailure";
  } catch (const TransformChain::StageFailure& failure) {
    EXPECT_EQ(failure.plugin, "scripted");
    EXPECT_EQ(failure.reason, "exploded");
  }
  ASSERT_EQ(h.settled.size(), 1u);
  EXPECT_EQ(h.settled[0].second.status, sdk::Status::failed);
  EXPECT_NE(h.settled[0].second.message.find("transform 'scripted' failed: exploded"), std::string::npos);
  EXPECT_TRUE(out.empty());
}

/// A reporter that records what it is given, and on which thread.
class RecordingReporter final : public sdk::Reporter {
 public:
  void open(const sdk::RunInfo&) override {}
  void record(const sdk::Record& record, const sdk::Outcome& outcome) override {
    if (delay.count() != 0) std::this_thread::sleep_for(delay);
    std::lock_guard lock(mutex);
    seen.emplace_back(record.sequence, outcome.status);
    threads.insert(std::this_thread::get_id());
  }
  void finish(const sdk::Summary& summary) override { finished_with = summary.ok; }

  std::chrono::milliseconds delay{0};
  std::mutex mutex;
  std::vector<std::pair<std::uint64_t, sdk::Status>> seen;
  std::set<std::thread::id> threads;
  std::uint64_t finished_with = 0;
};

struct LedgerHarness {
  RunStop stop;
  std::vector<PluginInstance<sdk::Reporter>> reporters;
  RecordingReporter* reporter = nullptr;
  LedgerHarness() {
    PluginInstance<sdk::Reporter> instance;
    instance.name = "recording";
    auto object = std::make_unique<RecordingReporter>();
    reporter = object.get();
    instance.object = std::move(object);
    reporters.push_back(std::move(instance));
  }
};

TEST(OutcomeLedger, CountsByStageAndAcknowledgesAFanOutOnceWithItsWorstStatus) {
  LedgerHarness h;
  std::vector<std::pair<std::uint64_t, sdk::Status>> acks;
  {
    OutcomeLedger ledger(h.reporters, h.stop, ErrorBudget(json()));
    ledger.acknowledge_with([&](std::uint64_t sequence, const sdk::Outcome& o) { acks.emplace_back(sequence, o.status); });
    ledger.open_reporters(sdk::RunInfo{});
    // Record 1 fanned out into 1 and 101; 2 is on its own; 3 was refused at the source.
    ledger.group(1, {101, 1});
    ledger.add(record_of(1, "v", "a"));
    ledger.add(record_of(101, "v", "b"));
    ledger.add(record_of(2, "v", "c"));
    sdk::Outcome refused = sdk::Outcome::rejected("invalid_utf8", "not UTF-8");
    refused.stage = sdk::Stage::source;
    ledger.settle_now(record_of(3, "raw", "\xff"), refused);
    ledger.deliver(101, sdk::Outcome::rejected("23514", "check"));
    ledger.deliver(2, sdk::Outcome::ok());
    ledger.deliver(2, sdk::Outcome::ok());  // a duplicate: ignored
    ledger.deliver(1, sdk::Outcome::ok());
    const auto counts = ledger.counts();
    EXPECT_EQ(counts.ok, 2u);
    EXPECT_EQ(counts.rejected, 2u);
    EXPECT_EQ(counts.rejected_at_source, 1u);
    EXPECT_EQ(counts.rejected_at_sink, 1u);
    sdk::Summary summary;
    summary.ok = counts.ok;
    ledger.finish_reporters(summary);
  }
  EXPECT_EQ(h.reporter->seen.size(), 4u);
  EXPECT_EQ(h.reporter->finished_with, 2u);
  EXPECT_EQ(h.reporter->threads.size(), 1u);
  EXPECT_EQ(h.reporter->threads.count(std::this_thread::get_id()), 0u) << "reporters run on the reporter thread";
  // 3 and 2 as they settled; 1 once, when both its parts were settled, rejected (the worse).
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(acks[0], (std::pair<std::uint64_t, sdk::Status>{3, sdk::Status::rejected}));
  EXPECT_EQ(acks[1], (std::pair<std::uint64_t, sdk::Status>{2, sdk::Status::ok}));
  EXPECT_EQ(acks[2], (std::pair<std::uint64_t, sdk::Status>{1, sdk::Status::rejected}));
}

TEST(OutcomeLedger, DeliveringDoesNotWaitForASlowReporterWhileTheQueueHasRoom) {
  LedgerHarness h;
  h.reporter->delay = std::chrono::milliseconds(20);
  OutcomeLedger ledger(h.reporters, h.stop, ErrorBudget(json()), 1000);
  ledger.open_reporters(sdk::RunInfo{});
  for (std::uint64_t i = 1; i <= 50; ++i) ledger.add(record_of(i, "v", "x"));
  const auto started = std::chrono::steady_clock::now();
  for (std::uint64_t i = 1; i <= 50; ++i) ledger.deliver(i, sdk::Outcome::ok());
  const auto delivering = std::chrono::steady_clock::now() - started;
  // 50 records at 20 ms is a second of reporting; handing them over must not take it.
  EXPECT_LT(delivering, std::chrono::milliseconds(500));
  ledger.finish_reporters(sdk::Summary{});
  EXPECT_EQ(h.reporter->seen.size(), 50u);
}

TEST(OutcomeLedger, AFullQueueMakesDeliveryWaitForTheReporter) {
  LedgerHarness h;
  h.reporter->delay = std::chrono::milliseconds(20);
  OutcomeLedger ledger(h.reporters, h.stop, ErrorBudget(json()), 2);
  ledger.open_reporters(sdk::RunInfo{});
  for (std::uint64_t i = 1; i <= 10; ++i) ledger.add(record_of(i, "v", "x"));
  const auto started = std::chrono::steady_clock::now();
  for (std::uint64_t i = 1; i <= 10; ++i) ledger.deliver(i, sdk::Outcome::ok());
  // At most 2 wait plus 1 in hand: the other 7 are delivered at the reporter's pace.
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(100));
  ledger.finish_reporters(sdk::Summary{});
  EXPECT_EQ(h.reporter->seen.size(), 10u);
}

}  // namespace
}  // namespace etl::host
