// The file state store: atomic replacement (a torn write never replaces the state), a damaged
// file refused rather than reset, one run at a time.
#include "state_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "test_support.hpp"

namespace etl::host {
namespace {

SavedState state_with(const std::string& position, std::uint64_t settled) {
  SavedState state;
  state.pipeline = "daily load";
  state.source = "csv-file";
  state.position = position;
  state.committed_at = "2026-12-03T09:00:00.000Z";
  state.run = "run-" + std::to_string(settled);
  state.settled = settled;
  return state;
}

TEST(FileStateStore, CommitsAndLoadsWhatWasCommitted) {
  etl::testing::TempDir dir;
  FileStateStore store(dir.file("state"), "daily load");
  store.acquire("r1");
  EXPECT_EQ(store.load(), std::nullopt);
  store.commit(state_with(R"({"line":5,"offset":50})", 4));
  const auto loaded = store.load();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->position, R"({"line":5,"offset":50})");
  EXPECT_EQ(loaded->settled, 4u);
  EXPECT_EQ(loaded->run, "run-4");
  EXPECT_EQ(store.file(), dir.file("state") + "/daily_load.state.json");
  store.reset();
  EXPECT_EQ(store.load(), std::nullopt);
}

TEST(FileStateStore, ATornWriteAtEveryByteLengthLeavesTheOldState) {
  etl::testing::TempDir dir;
  FileStateStore store(dir.file("state"), "daily load");
  store.acquire("r1");
  store.commit(state_with(R"({"offset":100})", 10));
  const std::string next = state_with(R"({"offset":200})", 20).to_json_text();
  for (std::size_t length = 0; length <= next.size(); ++length) {
    // A crash while the new state is written leaves the temporary file cut at `length`; the
    // rename that would make it the state never happened.
    etl::testing::write_file(store.temporary_file(), next.substr(0, length));
    const auto loaded = store.load();
    ASSERT_TRUE(loaded.has_value()) << length;
    EXPECT_EQ(loaded->position, R"({"offset":100})") << length;
  }
  // And the next commit goes through the leftover temporary file.
  store.commit(state_with(R"({"offset":200})", 20));
  EXPECT_EQ(store.load()->position, R"({"offset":200})");
}

TEST(FileStateStore, AStateFileCutAtAnyLengthIsRefusedNeverSilentlyReset) {
  etl::testing::TempDir dir;
  FileStateStore store(dir.file("state"), "daily load");
  store.acquire("r1");
  const std::string whole = state_with(R"({"offset":100})", 10).to_json_text();
  for (std::size_t length = 0; length + 1 < whole.size(); ++length) {  // the last byte is the newline
    etl::testing::write_file(store.file(), whole.substr(0, length));
    try {
      (void)store.load();
      ADD_FAILURE() << "a state cut at " << length << " bytes was accepted";
    } catch (const StateError& e) {
      EXPECT_NE(std::string(e.what()).find(store.file()), std::string::npos) << e.what();
    }
  }
}

TEST(FileStateStore, ASecondRunOfThePipelineIsRefusedWhileTheFirstHoldsIt) {
  etl::testing::TempDir dir;
  FileStateStore first(dir.file("state"), "daily load");
  first.acquire("first-run");
  FileStateStore second(dir.file("state"), "daily load");
  try {
    second.acquire("second-run");
    FAIL() << "two runs held one pipeline's state";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("held by another run (run first-run"), std::string::npos) << e.what();
  }
  first.release();
  EXPECT_NO_THROW(second.acquire("second-run"));
}

TEST(FileStateStore, TwoNamesOnOneFileAreToldApart) {
  etl::testing::TempDir dir;
  FileStateStore slash(dir.file("state"), "a/b");
  slash.acquire("r");
  slash.commit([] {
    SavedState state = state_with("1", 1);
    state.pipeline = "a/b";
    return state;
  }());
  slash.release();
  FileStateStore underscore(dir.file("state"), "a_b");
  EXPECT_THROW((void)underscore.load(), StateError);
}

}  // namespace
}  // namespace etl::host
