// csv-file and file-lines with settings.state through the real etl-host: a million-row load into
// a keyed table killed with SIGKILL three times and resumed stores every good row exactly once and
// reports every bad one; a grown file is read only where it grew; a changed file is refused; the
// state commands; two runs at once; the PostgreSQL state store.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>
#include <random>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

constexpr int kRows = 1000000;
constexpr int kBadEvery = 997;  // a row that is not its type: refused input, in the reject report

class CsvResume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { database_ = std::make_unique<PostgresServer>(); }
  static void TearDownTestSuite() { database_.reset(); }
  void SetUp() override {
    database_->query("DROP TABLE IF EXISTS items; CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); "
                     "GRANT ALL ON items TO etl; DROP TABLE IF EXISTS etl_state;");
  }

  json connection() const { return database_->connection_config(); }

  /// A keyed load (postgres-copy upsert: a row read again is stored once), one reject report per
  /// run (${ETL_RUN_ID}), state in files or PostgreSQL.
  std::string load_pipeline(const std::string& input, const json& state) {
    json sink_config = connection();
    sink_config.update({{"table", "items"}, {"columns", {{"id", "id"}, {"name", "name"}}}, {"mode", "upsert"}, {"conflict_columns", {"id"}}, {"batch_rows", 5000}});
    const json pipeline = {
        {"name", "items load"},
        {"source", {{"plugin", "csv-file"}, {"config", {{"path", input}, {"types", {{"id", "integer"}}}}}}},
        {"sink", {{"plugin", "postgres-copy"}, {"config", sink_config}}},
        {"reporters",
         {{{"plugin", "csv"},
           {"config", {{"path", dir_.file("rejects-${ETL_RUN_ID}.csv")}, {"statuses", {"rejected", "failed"}}}}}}},
        {"settings", {{"progress_interval", 0}, {"state", state}}}};
    write_file(dir_.file("load.json"), pipeline.dump(2));
    return dir_.file("load.json");
  }

  std::string file_state() const { return dir_.file("state"); }

  /// Every origin line in the reject reports of every run, finished (.csv) or killed (.csv.partial,
  /// whose last line a kill may have cut).
  std::multiset<int> rejected_lines(const std::string& input) const {
    std::multiset<int> lines;
    const std::regex origin(std::regex_replace(input, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") + ":([0-9]+)");
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("rejects-", 0) != 0) continue;
      std::string text = read_file(entry.path().string());
      if (const auto last = text.rfind('\n'); last != std::string::npos) text.resize(last + 1);
      for (auto it = std::sregex_iterator(text.begin(), text.end(), origin); it != std::sregex_iterator(); ++it) {
        lines.insert(std::stoi((*it)[1]));
      }
    }
    return lines;
  }

  long stored() const { return std::stol(database_->query("SELECT count(*) FROM items").at(0).at(0)); }

  static inline std::unique_ptr<PostgresServer> database_;
  TempDir dir_;
};

std::string million_rows(std::set<int>& bad_lines) {
  std::string text = "id,name\n";
  text.reserve(20 * kRows);
  for (int id = 1; id <= kRows; ++id) {
    if (id % kBadEvery == 0) {
      text += "x" + std::to_string(id) + ",bad\n";
      bad_lines.insert(id + 1);  // the header is line 1
    } else {
      text += std::to_string(id) + ",item " + std::to_string(id) + "\n";
    }
  }
  return text;
}

TEST_F(CsvResume, AMillionRowLoadKilledThreeTimesStoresEveryGoodRowOnceAndReportsEveryBadOne) {
  std::set<int> bad_lines;
  write_file(dir_.file("items.csv"), million_rows(bad_lines));
  const std::string pipeline = load_pipeline(dir_.file("items.csv"), {{"store", "file"}, {"path", file_state()}, {"commit_interval", 0.2}});
  std::random_device seed_source;
  const unsigned seed = seed_source();
  std::mt19937 random(seed);
  SCOPED_TRACE("seed " + std::to_string(seed));

  std::uint64_t resumed_after = 0;
  for (int kill = 0; kill < 3; ++kill) {
    // Killed once the table has grown by a random number of rows (at least one commit later).
    const long before = stored();
    const long target = before + 100000 + static_cast<long>(random() % 150000);
    BackgroundProcess run({etl_host_binary(), "run", pipeline});
    ASSERT_TRUE(eventually([&] { return stored() >= target || !run.running(); }, std::chrono::seconds(120)));
    ASSERT_TRUE(run.running()) << "the run ended before it could be killed: " << run.err();
    run.signal(SIGKILL);
    EXPECT_EQ(run.wait(), 128 + SIGKILL);
    if (kill > 0) {
      // Each resumed run started after what the one before it had committed.
      std::smatch match;
      const std::string err = run.err();
      ASSERT_TRUE(std::regex_search(err, match, std::regex("resuming after line ([0-9]+)"))) << err;
      const std::uint64_t line = std::stoull(match[1]);
      EXPECT_GT(line, resumed_after);
      resumed_after = line;
    }
  }
  const auto last = run_process({etl_host_binary(), "run", pipeline, "--summary-json", dir_.file("summary.json")});
  ASSERT_EQ(last.exit_code, 0) << last.err;
  const json summary = json::parse(read_file(dir_.file("summary.json")));
  // It read only what was left.
  EXPECT_LT(summary.at("received").get<std::uint64_t>(), static_cast<std::uint64_t>(kRows));
  EXPECT_GT(summary.at("received").get<std::uint64_t>(), 0u);

  // Every good row exactly once (the key would refuse a second; the count shows none is missing).
  EXPECT_EQ(stored(), kRows - static_cast<long>(bad_lines.size()));
  EXPECT_EQ(database_->query("SELECT count(*) FROM items WHERE name <> 'item ' || id").at(0).at(0), "0");
  // Every bad row in some run's reject report (a row read twice may be in two).
  const auto rejected = rejected_lines(dir_.file("items.csv"));
  for (const int line : bad_lines) EXPECT_EQ(rejected.count(line) >= 1, true) << "line " << line << " in no reject report";
  EXPECT_EQ(std::set<int>(rejected.begin(), rejected.end()), bad_lines);

  // The state says where it ended: after the last line.
  const auto shown = run_process({etl_host_binary(), "state", "show", pipeline, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(json::parse(shown.out).at("position").at("line"), kRows + 1);
  // Run again: nothing left to read.
  const auto again = run_process({etl_host_binary(), "run", pipeline});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("received 0,"), std::string::npos) << again.err;
}

TEST_F(CsvResume, AGrownFileIsReadWhereItGrewAChangedOneIsRefusedAndTheCommandsSayAndForget) {
  write_file(dir_.file("items.csv"), "id,name\n1,a\n2,b\n");
  const std::string pipeline = load_pipeline(dir_.file("items.csv"), {{"store", "file"}, {"path", file_state()}});
  const auto none = run_process({etl_host_binary(), "state", "show", pipeline});
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_NE(none.out.find("no position committed"), std::string::npos) << none.out;

  ASSERT_EQ(run_process({etl_host_binary(), "run", pipeline}).exit_code, 0);
  std::ofstream(dir_.file("items.csv"), std::ios::app) << "3,c\n4,d\n";
  const auto grown = run_process({etl_host_binary(), "run", pipeline, "--summary-json", dir_.file("summary.json")});
  ASSERT_EQ(grown.exit_code, 0) << grown.err;
  EXPECT_EQ(json::parse(read_file(dir_.file("summary.json"))).at("received"), 2);
  EXPECT_NE(grown.err.find("resuming after line 3 (byte 16)"), std::string::npos) << grown.err;
  EXPECT_EQ(stored(), 4);

  const auto shown = run_process({etl_host_binary(), "state", "show", pipeline});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("source     csv-file"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("\"line\":5"), std::string::npos) << shown.out;
  EXPECT_NE(shown.out.find("2 records of that run settled"), std::string::npos) << shown.out;

  // Another file under the same name: refused, saying what changed; nothing read.
  write_file(dir_.file("items.csv"), "id,name\n9,z\n");
  const auto changed = run_process({etl_host_binary(), "run", pipeline});
  EXPECT_EQ(changed.exit_code, 5) << changed.err;
  EXPECT_NE(changed.err.find("changed since the committed position (it is 12 bytes now, smaller than the 24 bytes"),
            std::string::npos)
      << changed.err;
  EXPECT_EQ(stored(), 4);
  // on_changed: restart reads it from its beginning.
  const auto restarted = run_process({etl_host_binary(), "run", pipeline, "--set", "source.config.on_changed=restart"});
  ASSERT_EQ(restarted.exit_code, 0) << restarted.err;
  EXPECT_EQ(stored(), 5);

  // --from-start once; reset forgets.
  const auto from_start = run_process({etl_host_binary(), "run", pipeline, "--from-start", "--summary-json", dir_.file("summary.json")});
  ASSERT_EQ(from_start.exit_code, 0) << from_start.err;
  EXPECT_EQ(json::parse(read_file(dir_.file("summary.json"))).at("received"), 1);
  const auto reset = run_process({etl_host_binary(), "state", "reset", pipeline});
  ASSERT_EQ(reset.exit_code, 0) << reset.err;
  EXPECT_NE(run_process({etl_host_binary(), "state", "show", pipeline}).out.find("no position committed"), std::string::npos);

  // A state file that does not parse is refused, never reset.
  ASSERT_EQ(run_process({etl_host_binary(), "run", pipeline}).exit_code, 0);
  write_file(file_state() + "/items_load.state.json", "{\"format\": 1, \"pipel");
  const auto damaged = run_process({etl_host_binary(), "run", pipeline});
  EXPECT_EQ(damaged.exit_code, 11) << damaged.err;
  EXPECT_NE(damaged.err.find("items_load.state.json: the state does not parse"), std::string::npos) << damaged.err;
}

TEST_F(CsvResume, AGzipFileResumesByReadingUpToTheOffsetAgain) {
  std::string text = "id,name\n";
  for (int id = 1; id <= 5000; ++id) text += std::to_string(id) + ",item " + std::to_string(id) + "\n";
  write_file(dir_.file("items.csv"), text);
  ASSERT_EQ(run_process({"/bin/sh", "-c", "gzip -c '" + dir_.file("items.csv") + "' > '" + dir_.file("items.csv.gz") + "'"}).exit_code, 0);
  const std::string pipeline =
      load_pipeline(dir_.file("items.csv.gz"), {{"store", "file"}, {"path", file_state()}, {"commit_interval", 0.1}});
  const auto first = run_process({etl_host_binary(), "run", pipeline});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(stored(), 5000);
  database_->query("TRUNCATE items");
  // Everything was settled: the next run reads the gzip text up to the committed offset and no row.
  const auto again = run_process({etl_host_binary(), "run", pipeline});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("resuming after line 5001 (byte " + std::to_string(text.size()) + " of the gzip text, re-read to it)"),
            std::string::npos)
      << again.err;
  EXPECT_NE(again.err.find("received 0,"), std::string::npos) << again.err;
  EXPECT_EQ(stored(), 0);
}

TEST_F(CsvResume, AFolderOfFilesIsReadOnceEachNewFilesAndGrowthOnTheNextRun) {
  std::filesystem::create_directories(dir_.file("incoming"));
  int next_id = 1;
  const auto daily = [&](const std::string& name, int rows) {
    std::string text = "id,name\n";
    for (int i = 0; i < rows; ++i, ++next_id) text += std::to_string(next_id) + "," + name + "\n";
    write_file(dir_.file("incoming/" + name), text);
  };
  for (int day = 1; day <= 20; ++day) daily("day-" + std::string(day < 10 ? "0" : "") + std::to_string(day) + ".csv", 50);
  const std::string pipeline =
      load_pipeline(dir_.file("incoming/day-*.csv"), {{"store", "file"}, {"path", file_state()}, {"commit_interval", 0.1}});
  const auto received = [&] {
    const auto run = run_process({etl_host_binary(), "run", pipeline, "--summary-json", dir_.file("summary.json")});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return json::parse(read_file(dir_.file("summary.json"))).at("received").get<int>();
  };
  EXPECT_EQ(received(), 1000);
  EXPECT_EQ(stored(), 1000);
  EXPECT_EQ(received(), 0);  // every file read to its end is not read again

  // Two new files (one sorting before the others), and the last day's file grew.
  daily("day-00.csv", 10);
  daily("day-21.csv", 30);
  std::ofstream(dir_.file("incoming/day-20.csv"), std::ios::app) << next_id++ << ",day-20.csv late\n";
  EXPECT_EQ(received(), 41);
  EXPECT_EQ(stored(), 1041);
  EXPECT_EQ(database_->query("SELECT count(*) FROM items WHERE name = 'day-20.csv late'").at(0).at(0), "1");

  const auto shown = run_process({etl_host_binary(), "state", "show", pipeline, "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  const json files = json::parse(shown.out).at("position").at("files");
  EXPECT_EQ(files.size(), 22u);
  EXPECT_EQ(files.at(dir_.file("incoming/day-20.csv")).at("line"), 52);

  // A file whose layout differs from the first's stops the run, naming it.
  write_file(dir_.file("incoming/day-22.csv"), "id,other\n1,x\n");
  const auto mixed = run_process({etl_host_binary(), "run", pipeline});
  EXPECT_EQ(mixed.exit_code, 5) << mixed.err;
  EXPECT_NE(mixed.err.find("day-22.csv: its header names other columns than"), std::string::npos) << mixed.err;
}

TEST_F(CsvResume, FollowingAPatternReadsEachNewFileAsItAppearsAndStopsOnSigterm) {
  std::filesystem::create_directories(dir_.file("incoming"));
  int next_id = 1;
  // Written beside the pattern, then moved in whole, as a folder watcher's users are told to.
  const auto deliver = [&](const std::string& name, int rows) {
    std::string text = "id,name\n";
    for (int i = 0; i < rows; ++i, ++next_id) text += std::to_string(next_id) + "," + name + "\n";
    write_file(dir_.file("incoming/." + name + ".part"), text);
    std::filesystem::rename(dir_.file("incoming/." + name + ".part"), dir_.file("incoming/" + name));
  };
  deliver("day-01.csv", 3);
  json pipeline = json::parse(read_file(load_pipeline(
      dir_.file("incoming/day-*.csv"), {{"store", "file"}, {"path", file_state()}, {"commit_interval", 0.1}})));
  pipeline["source"]["config"].update({{"follow", true}, {"poll_interval", 0.1}});
  pipeline["sink"]["config"]["batch_wait"] = 0.1;  // rows that come slowly are stored without waiting for 5,000
  write_file(dir_.file("follow.json"), pipeline.dump());
  const auto committed_files = [&] {
    const auto shown = run_process({etl_host_binary(), "state", "show", dir_.file("follow.json"), "--json"});
    if (shown.exit_code != 0) return std::size_t{0};
    const json position = json::parse(shown.out).at("position");  // null before the first commit
    return position.is_object() ? position.at("files").size() : std::size_t{0};
  };
  {
    BackgroundProcess run({etl_host_binary(), "run", dir_.file("follow.json")});
    ASSERT_TRUE(eventually([&] { return stored() == 3; })) << run.err();
    deliver("day-02.csv", 5);
    ASSERT_TRUE(eventually([&] { return stored() == 8; })) << run.err();
    deliver("day-03.csv", 2);
    ASSERT_TRUE(eventually([&] { return stored() == 10 && committed_files() == 3; })) << run.err();
    EXPECT_TRUE(run.running());  // a service: the files running out does not end it
    const auto stopping = std::chrono::steady_clock::now();
    run.signal(SIGTERM);
    EXPECT_EQ(run.wait(std::chrono::seconds(10)), 143) << run.err();
    EXPECT_LT(std::chrono::steady_clock::now() - stopping, std::chrono::seconds(3));
    EXPECT_NE(run.err().find("1 new file(s), from " + dir_.file("incoming/day-02.csv")), std::string::npos) << run.err();
  }
  // One delivered while it was stopped, and one as the next run goes: only those two are read.
  deliver("day-04.csv", 4);
  BackgroundProcess again({etl_host_binary(), "run", dir_.file("follow.json"), "--summary-json", dir_.file("summary.json")});
  ASSERT_TRUE(eventually([&] { return stored() == 14; })) << again.err();
  deliver("day-05.csv", 1);
  ASSERT_TRUE(eventually([&] { return stored() == 15; })) << again.err();
  again.signal(SIGTERM);
  ASSERT_EQ(again.wait(std::chrono::seconds(10)), 143) << again.err();
  EXPECT_EQ(json::parse(read_file(dir_.file("summary.json"))).at("received"), 5);
  EXPECT_EQ(committed_files(), 5u);
}

TEST_F(CsvResume, FollowNeedsAPattern) {
  json pipeline = json::parse(read_file(load_pipeline(dir_.file("one.csv"), {{"store", "file"}, {"path", file_state()}})));
  pipeline["source"]["config"]["follow"] = true;
  write_file(dir_.file("one.json"), pipeline.dump());
  const auto validated = run_process({etl_host_binary(), "validate", dir_.file("one.json")});
  EXPECT_EQ(validated.exit_code, 3);
  EXPECT_NE(validated.err.find("follow watches a pattern for new files: path must be one"), std::string::npos) << validated.err;
}

TEST_F(CsvResume, FileLinesResumesAfterItsLastSettledLine) {
  write_file(dir_.file("lines.txt"), "one\ntwo\n");
  const json pipeline = {
      {"name", "lines"},
      {"source", {{"plugin", "file-lines"}, {"config", {{"path", dir_.file("lines.txt")}}}}},
      {"sink", {{"plugin", "null"}}},
      {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file("report.json")}}}}}},
      {"settings", {{"state", {{"store", "file"}, {"path", file_state()}}}}}};
  write_file(dir_.file("lines.json"), pipeline.dump());
  ASSERT_EQ(run_process({etl_host_binary(), "run", dir_.file("lines.json")}).exit_code, 0);
  std::ofstream(dir_.file("lines.txt"), std::ios::app) << "three\r\nfour";
  const auto grown = run_process({etl_host_binary(), "run", dir_.file("lines.json")});
  ASSERT_EQ(grown.exit_code, 0) << grown.err;
  const json report = json::parse(read_file(dir_.file("report.json")));
  ASSERT_EQ(report.at("records").size(), 2u) << report.dump();
  EXPECT_EQ(report.at("records")[0].at("origin"), dir_.file("lines.txt") + ":3");
  EXPECT_EQ(report.at("records")[0].at("record").at("line"), "three");
  EXPECT_EQ(report.at("records")[1].at("origin"), dir_.file("lines.txt") + ":4");
}

TEST_F(CsvResume, FileLinesWithAPatternReadsEachFileOnce) {
  std::filesystem::create_directories(dir_.file("logs"));
  write_file(dir_.file("logs/a.log"), "a1\na2\n");
  write_file(dir_.file("logs/b.log"), "b1\n");
  const json pipeline = {
      {"name", "logs"},
      {"source", {{"plugin", "file-lines"}, {"config", {{"path", dir_.file("logs/*.log")}}}}},
      {"sink", {{"plugin", "null"}}},
      {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file("report.json")}}}}}},
      {"settings", {{"state", {{"store", "file"}, {"path", file_state()}}}}}};
  write_file(dir_.file("logs.json"), pipeline.dump());
  const auto origins = [&] {
    const auto run = run_process({etl_host_binary(), "run", dir_.file("logs.json")});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    std::vector<std::string> seen;
    const json report = json::parse(read_file(dir_.file("report.json")));
    for (const auto& record : report.at("records")) seen.push_back(record.at("origin"));
    return seen;
  };
  EXPECT_EQ(origins(), (std::vector<std::string>{dir_.file("logs/a.log") + ":1", dir_.file("logs/a.log") + ":2",
                                                 dir_.file("logs/b.log") + ":1"}));
  EXPECT_TRUE(origins().empty());
  std::ofstream(dir_.file("logs/a.log"), std::ios::app) << "a3\n";
  write_file(dir_.file("logs/c.log"), "c1\n");
  EXPECT_EQ(origins(), (std::vector<std::string>{dir_.file("logs/a.log") + ":3", dir_.file("logs/c.log") + ":1"}));
}

TEST_F(CsvResume, FileLinesFollowingAPatternReadsNewFilesUntilStopped) {
  std::filesystem::create_directories(dir_.file("logs"));
  write_file(dir_.file("logs/a.log"), "a1\n");
  const json pipeline = {
      {"name", "logs"},
      {"source", {{"plugin", "file-lines"}, {"config", {{"path", dir_.file("logs/*.log")}, {"follow", true}, {"poll_interval", 0.1}}}}},
      {"sink", {{"plugin", "null"}}},
      {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file("report.json")}}}}}},
      {"settings", {{"state", {{"store", "file"}, {"path", file_state()}, {"commit_interval", 0.1}}}}}};
  write_file(dir_.file("logs.json"), pipeline.dump());
  const auto committed = [&](const std::string& file) {
    const auto shown = run_process({etl_host_binary(), "state", "show", dir_.file("logs.json"), "--json"});
    if (shown.exit_code != 0) return false;
    const json position = json::parse(shown.out).at("position");  // null before the first commit
    return position.is_object() && position.at("files").contains(dir_.file(file));
  };
  BackgroundProcess run({etl_host_binary(), "run", dir_.file("logs.json")});
  ASSERT_TRUE(eventually([&] { return committed("logs/a.log"); })) << run.err();
  write_file(dir_.file("logs/b.log"), "b1\nb2\n");
  ASSERT_TRUE(eventually([&] { return committed("logs/b.log"); })) << run.err();
  run.signal(SIGTERM);
  ASSERT_EQ(run.wait(std::chrono::seconds(10)), 143) << run.err();
  const json report = json::parse(read_file(dir_.file("report.json")));
  std::vector<std::string> origins;
  for (const auto& record : report.at("records")) origins.push_back(record.at("origin"));
  EXPECT_EQ(origins, (std::vector<std::string>{dir_.file("logs/a.log") + ":1", dir_.file("logs/b.log") + ":1",
                                               dir_.file("logs/b.log") + ":2"}));
}

TEST_F(CsvResume, APipelineWhoseSourceKeepsNoPositionCannotKeepState) {
  const json pipeline = {{"source", {{"plugin", "http-newline"}, {"config", {{"url", "http://127.0.0.1:1/"}, {"size", 1}}}}},
                         {"sink", {{"plugin", "null"}}},
                         {"reporters", {{{"plugin", "stdout"}}}},
                         {"settings", {{"state", {{"store", "file"}}}}}};
  write_file(dir_.file("server.json"), pipeline.dump());
  const auto validated = run_process({etl_host_binary(), "validate", dir_.file("server.json")});
  EXPECT_EQ(validated.exit_code, 3);
  EXPECT_NE(validated.err.find("source 'http-newline' keeps no position between runs"), std::string::npos) << validated.err;
}

TEST_F(CsvResume, StateInPostgresKeepsASecondRunOutResumesAndIsTakenOverOnlyAfterTheLeaseExpired) {
  // file-lines on a FIFO blocks in open until a writer comes: the first run holds the lease meanwhile.
  const std::string fifo = dir_.file("feed");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  write_file(dir_.file("items.csv"), "id,name\n1,a\n2,b\n");
  json state = connection();
  state.update({{"store", "postgres"}, {"table", "etl_state"}, {"lease", 2}, {"commit_interval", 0.2}});
  const std::string pipeline = load_pipeline(dir_.file("items.csv"), state);

  {
    json held = json::parse(read_file(pipeline));
    held["source"] = {{"plugin", "file-lines"}, {"config", {{"path", fifo}}}};
    held["sink"] = {{"plugin", "null"}};
    write_file(dir_.file("held.json"), held.dump());  // same pipeline name: "items load"
    BackgroundProcess first({etl_host_binary(), "run", dir_.file("held.json")});
    ASSERT_TRUE(eventually([&] {
      try {
        const auto rows = database_->query("SELECT count(*) FROM etl_state WHERE lease_holder IS NOT NULL");
        return !rows.empty() && rows.at(0).at(0) == "1";
      } catch (const std::exception&) {
        return false;  // the table is not there yet
      }
    })) << first.err();
    const auto second = run_process({etl_host_binary(), "run", pipeline});
    EXPECT_EQ(second.exit_code, 11) << second.err;
    EXPECT_NE(second.err.find("the state of pipeline 'items load'"), std::string::npos) << second.err;
    EXPECT_NE(second.err.find("is held by run"), std::string::npos) << second.err;
    EXPECT_EQ(second.err.find(database_->get("DB_PASS")), std::string::npos);
    EXPECT_EQ(stored(), 0);
    // Killed: its lease is left to expire; after it, a run takes over.
    first.signal(SIGKILL);
    first.wait();
  }
  ASSERT_TRUE(eventually([&] { return run_process({etl_host_binary(), "run", pipeline}).exit_code == 0; },
                         std::chrono::seconds(20)));
  EXPECT_EQ(stored(), 2);
  std::ofstream(dir_.file("items.csv"), std::ios::app) << "3,c\n";
  const auto resumed = run_process({etl_host_binary(), "run", pipeline, "--summary-json", dir_.file("summary.json")});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(json::parse(read_file(dir_.file("summary.json"))).at("received"), 1);
  EXPECT_EQ(stored(), 3);
  const auto rows = database_->query("SELECT source, position->>'line', lease_holder IS NULL FROM etl_state WHERE pipeline = 'items load'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "csv-file");
  EXPECT_EQ(rows[0][1], "4");
  EXPECT_EQ(rows[0][2], "t");  // released at the end
  const auto shown = run_process({etl_host_binary(), "state", "show", pipeline});
  EXPECT_NE(shown.out.find("state table etl_state on"), std::string::npos) << shown.out;
}

}  // namespace
}  // namespace etl::testing
