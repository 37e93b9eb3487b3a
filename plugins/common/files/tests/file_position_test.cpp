// The file sources' position: its text round trip, and the check that a file to resume is the
// one the position was taken in.
#include "files/file_position.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "etl/sdk/json.hpp"
#include "etl/sdk/plugin.hpp"

namespace etl::plugins::files {
namespace {

class FilePositionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("file-position-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  void write(const std::string& text, bool append = false) {
    std::ofstream out(path_, append ? std::ios::app | std::ios::binary : std::ios::trunc | std::ios::binary);
    out << text;
  }
  FilePosition taken_now(std::uint64_t offset, std::uint64_t line) {
    FilePosition position;
    position.offset = offset;
    position.line = line;
    position.identity = FileIdentity::of(path_);
    return position;
  }
  std::string path_;
};

TEST_F(FilePositionTest, TextRoundTripKeepsEveryMember) {
  write("id,name\n1,a\n");
  const FilePosition position = taken_now(12, 2);
  const FilePosition back = FilePosition::from_json_text(position.to_json_text(), path_);
  EXPECT_EQ(back.offset, 12u);
  EXPECT_EQ(back.line, 2u);
  EXPECT_EQ(back.identity.size, 12u);
  EXPECT_EQ(back.identity.head_bytes, 12u);
  EXPECT_EQ(back.identity.head_hash, position.identity.head_hash);
  EXPECT_EQ(back.identity.head_hash.size(), 16u);
}

TEST_F(FilePositionTest, AFileThatGrewIsTheSameFile) {
  write("id,name\n1,a\n");
  const FilePosition position = taken_now(12, 2);
  write("2,b\n", true);
  EXPECT_EQ(changed_since(path_, position), std::nullopt);
}

TEST_F(FilePositionTest, ALargeFileThatGrewIsTheSameFile) {
  write(std::string(10000, 'x') + "\n");
  const FilePosition position = taken_now(10001, 1);
  EXPECT_EQ(position.identity.head_bytes, FileIdentity::kHeadBytes);
  write("more\n", true);
  EXPECT_EQ(changed_since(path_, position), std::nullopt);
}

TEST_F(FilePositionTest, AFileThatShrankIsRefusedSayingBothSizes) {
  write("id,name\n1,a\n2,b\n");
  const FilePosition position = taken_now(16, 3);
  write("id,name\n1,a\n");
  const auto changed = changed_since(path_, position);
  ASSERT_TRUE(changed.has_value());
  EXPECT_NE(changed->find("12 bytes now, smaller than the 16"), std::string::npos) << *changed;
}

TEST_F(FilePositionTest, AFileWhoseFirstBytesDifferIsRefused) {
  write("id,name\n1,a\n");
  const FilePosition position = taken_now(12, 2);
  write("id,nAme\n1,a\n2,b\n");
  const auto changed = changed_since(path_, position);
  ASSERT_TRUE(changed.has_value());
  EXPECT_NE(changed->find("first 12 bytes differ"), std::string::npos) << *changed;
}

TEST_F(FilePositionTest, APositionThatIsNotOneRefusesNamingTheFile) {
  try {
    (void)FilePosition::from_json_text(R"({"offset": "x"})", "in.csv");
    FAIL() << "accepted";
  } catch (const sdk::PluginError& e) {
    EXPECT_NE(std::string(e.what()).find("in.csv: the committed position"), std::string::npos) << e.what();
  }
}

TEST_F(FilePositionTest, APatternsPositionKeepsEachFileReachedOrCommittedAndDropsFilesGone) {
  write("1\n");
  PatternPositions first;
  first.set_files({path_, "/gone.csv"});
  EXPECT_EQ(first.text(), "");  // nothing reached yet
  first.opened(0, FileIdentity::of(path_));
  first.reached(0, 2, 1);
  first.opened(1, std::nullopt);  // a file that cannot be resumed has no position
  first.reached(1, 5, 1);
  const std::string committed = first.text();
  ASSERT_NE(committed.find(path_), std::string::npos) << committed;
  EXPECT_EQ(committed.find("/gone.csv"), std::string::npos) << committed;

  PatternPositions next;
  next.resume_from(committed, "*.csv");
  next.set_files({"/new.csv", path_});
  EXPECT_EQ(next.committed(0), std::nullopt);
  ASSERT_TRUE(next.committed(1).has_value());
  EXPECT_EQ(next.committed(1)->offset, 2u);
  EXPECT_EQ(next.text(), committed);  // carried while this run has not reached it
  EXPECT_THROW(next.resume_from(R"({"offset": 1})", "*.csv"), sdk::PluginError);
}

TEST(Patterns, AreToldFromFileNamesAndMatchRegularFilesInNameOrder) {
  EXPECT_TRUE(is_pattern("in/*.csv"));
  EXPECT_TRUE(is_pattern("day-?.csv"));
  EXPECT_FALSE(is_pattern("in/day-1.csv"));
  const auto dir = std::filesystem::temp_directory_path() / ("patterns-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "sub.csv");
  for (const char* name : {"b.csv", "a.csv", "c.txt"}) std::ofstream(dir / name) << "x\n";
  EXPECT_EQ(matching_files((dir / "*.csv").string()),
            (std::vector<std::string>{(dir / "a.csv").string(), (dir / "b.csv").string()}));
  EXPECT_TRUE(matching_files((dir / "*.none").string()).empty());
  std::filesystem::remove_all(dir);
}

TEST(FolderWatch, OffersAFileOnceItStoppedChangingAndNeverOneTakenBefore) {
  const auto dir = std::filesystem::temp_directory_path() / ("folder-watch-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = [&](const char* name) { return (dir / name).string(); };
  std::ofstream(path("a.csv")) << "taken at the start\n";
  FolderWatch watch((dir / "*.csv").string(), {path("a.csv")});
  EXPECT_TRUE(watch.settled_new_files().empty());

  std::ofstream(path("c.csv")) << "half";
  std::ofstream(path("b.csv")) << "whole\n";
  EXPECT_TRUE(watch.settled_new_files().empty());  // first seen: may still be written
  std::ofstream(path("c.csv"), std::ios::app) << " and the rest\n";
  EXPECT_EQ(watch.settled_new_files(), std::vector<std::string>{path("b.csv")});  // c.csv grew meanwhile
  EXPECT_EQ(watch.settled_new_files(), std::vector<std::string>{path("c.csv")});
  std::ofstream(path("b.csv"), std::ios::app) << "grown after it was taken\n";
  EXPECT_TRUE(watch.settled_new_files().empty());
  EXPECT_TRUE(watch.settled_new_files().empty());
  std::filesystem::remove_all(dir);
}

TEST(PatternPositionsAdded, FilesAddedDuringARunKeepTheirPositions) {
  PatternPositions positions;
  positions.set_files({"/in/a.csv"});
  positions.add_files({"/in/b.csv"});
  ASSERT_EQ(positions.files(), (std::vector<std::string>{"/in/a.csv", "/in/b.csv"}));
  FileIdentity identity;
  identity.size = 9;
  identity.head_bytes = 9;
  identity.head_hash = "0123456789abcdef";
  positions.opened(1, identity);
  positions.reached(1, 9, 2);
  const auto text = nlohmann::json::parse(positions.text());
  EXPECT_EQ(text.at("files").size(), 1u);
  EXPECT_EQ(text.at("files").at("/in/b.csv").at("line"), 2);
}

}  // namespace
}  // namespace etl::plugins::files
