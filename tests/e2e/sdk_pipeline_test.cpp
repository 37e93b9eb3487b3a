// SDK 1.0 end to end, with the real etl-host, real plugin libraries and a real PostgreSQL:
// bad input refused at the source, validation at a transform, constraints at the sink — each
// record exactly once with its stage, in the summary, the error budget and the reject file
// (which loads again once fixed); acknowledgements to the source; a slow reporter that does
// not slow the sink down.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

std::string test_plugins(const std::string& dir) { return binary_dir() + "/test-plugins/" + dir; }

class SdkPipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    database_ = std::make_unique<PostgresServer>();
    database_->query(
        "CREATE TABLE greetings (name text NOT NULL CHECK (length(name) <= 8), greeting text NOT NULL, "
        "origin text NOT NULL); GRANT ALL ON greetings TO etl;");
  }
  static void TearDownTestSuite() { database_.reset(); }
  void SetUp() override {
    database_->query("TRUNCATE greetings");
    database_->truncate_tokens();
  }

  /// file-lines -> validate (letters only) -> map (name, greeting, origin) -> greetings.
  std::string write_pipeline(const std::string& input, json settings = json::object()) {
    const auto& db = database_->env();
    json pipeline = {
        {"source", {{"plugin", "file-lines"}, {"config", {{"path", input}}}}},
        {"transforms",
         {{{"plugin", "validate"}, {"config", {{"rules", {{"line", {{"required", true}, {"regex", "^[a-z]+$"}}}}}}}},
          {{"plugin", "map"},
           {"config",
            {{"copy", {{"name", "line"}}}, {"template", {{"greeting", "Hello, {name}!"}}}, {"set", {{"origin", "file"}}}}}}}},
        {"sink",
         {{"plugin", "postgres-row-by-row"},
          {"config",
           {{"host", db.at("DB_HOST")}, {"port", std::stoi(db.at("DB_PORT"))}, {"user", db.at("DB_USER")},
            {"password", db.at("DB_PASS")}, {"dbname", db.at("DB_NAME")}, {"sslmode", db.at("DB_SSLMODE")},
            {"sslrootcert", db.at("DB_SSLROOTCERT")}, {"table", "greetings"},
            {"columns", {{"name", "name"}, {"greeting", "greeting"}, {"origin", "origin"}}}}}}},
        {"reporters",
         {{{"plugin", "json"}, {"config", {{"path", dir_.file("report.json")}}}},
          {{"plugin", "csv"},
           {"config",
            {{"path", dir_.file("rejects.csv")}, {"layout", "input"}, {"header", false}, {"statuses", {"rejected"}}}}}}},
        {"settings", settings}};
    write_file(dir_.file("pipeline.json"), pipeline.dump(2));
    return dir_.file("pipeline.json");
  }

  ProcessResult run(const std::string& pipeline) {
    ProcessOptions options;
    options.unset_env = {"ETL_PLUGIN_PATH"};
    return run_process({etl_host_binary(), "run", pipeline}, options);
  }

  static std::multiset<std::string> names_in_table() {
    std::multiset<std::string> names;
    for (const auto& row : database_->query("SELECT name FROM greetings")) names.insert(row.at(0));
    return names;
  }

  static inline std::unique_ptr<PostgresServer> database_;
  TempDir dir_;
};

TEST_F(SdkPipeline, EachStageRefusesWhatItMustAndEveryRecordIsReportedOnce) {
  // Good lines, a line that is not UTF-8 (source), one that is not letters only (transform),
  // one too long for the table's CHECK (sink).
  write_file(dir_.file("input.txt"), "ann\nbob\n\xff\xfe\nbob2\nabcdefghij\ncy\n");
  const auto result = run(write_pipeline(dir_.file("input.txt")));
  ASSERT_EQ(result.exit_code, 0) << result.err;

  const json report = json::parse(read_file(dir_.file("report.json")));
  ASSERT_EQ(report.at("records").size(), 6u) << report.dump(2);
  std::map<std::string, json> by_origin;
  for (const auto& record : report.at("records")) {
    EXPECT_TRUE(by_origin.emplace(record.at("origin").get<std::string>(), record).second)
        << "reported twice: " << record.dump();
  }
  const std::string input = dir_.file("input.txt");
  const json& utf8 = by_origin.at(input + ":3");
  EXPECT_EQ(utf8.at("status"), "rejected");
  EXPECT_EQ(utf8.at("stage"), "source");
  EXPECT_EQ(utf8.at("code"), "invalid_utf8");
  const json& letters = by_origin.at(input + ":4");
  EXPECT_EQ(letters.at("stage"), "transform");
  EXPECT_EQ(letters.at("code"), "validate.regex");
  EXPECT_NE(letters.at("error").get<std::string>().find("field \"line\""), std::string::npos) << letters.dump();
  const json& too_long = by_origin.at(input + ":5");
  EXPECT_EQ(too_long.at("stage"), "sink");
  EXPECT_EQ(too_long.at("code"), "23514");
  for (const char* line : {":1", ":2", ":6"}) {
    const json& ok = by_origin.at(input + line);
    EXPECT_EQ(ok.at("status"), "ok") << ok.dump();
    EXPECT_EQ(ok.at("record").at("greeting"), "Hello, " + ok.at("record").at("name").get<std::string>() + "!");
  }

  const json& summary = report.at("summary");
  EXPECT_EQ(summary.at("received"), 6);
  EXPECT_EQ(summary.at("ok"), 3);
  EXPECT_EQ(summary.at("rejected"), 3);
  EXPECT_EQ(summary.at("rejected_by_stage"), json({{"source", 1}, {"transform", 1}, {"sink", 1}}));
  EXPECT_NE(result.err.find("rejected 3 (source 1, transform 1, sink 1)"), std::string::npos) << result.err;

  // The table holds exactly the ok rows.
  EXPECT_EQ(names_in_table(), (std::multiset<std::string>{"ann", "bob", "cy"}));

  // The reject file holds the rejected input as it came, one line each, in the order decided.
  const std::string rejects = read_file(dir_.file("rejects.csv"));
  std::multiset<std::string> rejected_lines;
  for (const auto& line : lines_of(rejects)) rejected_lines.insert(line.back() == '\r' ? line.substr(0, line.size() - 1) : line);
  EXPECT_EQ(rejected_lines, (std::multiset<std::string>{"\xff\xfe", "bob2", "abcdefghij"}));

  // Fixed in place, it loads again, and then every line is stored.
  std::string fixed = rejects;
  for (const auto& [bad, good] : std::vector<std::pair<std::string, std::string>>{
           {"\xff\xfe", "dee"}, {"bob2", "bobby"}, {"abcdefghij", "abcdefgh"}}) {
    fixed.replace(fixed.find(bad), bad.size(), good);
  }
  write_file(dir_.file("fixed.csv"), fixed);
  const auto again = run(write_pipeline(dir_.file("fixed.csv")));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(names_in_table(), (std::multiset<std::string>{"ann", "bob", "cy", "dee", "bobby", "abcdefgh"}));
  EXPECT_EQ(read_file(dir_.file("rejects.csv")), "");
}

TEST_F(SdkPipeline, TheErrorBudgetCountsRejectionsOfEveryStage) {
  // One rejection per stage is three: a budget of 2 is exceeded, whatever stage the third is at.
  write_file(dir_.file("input.txt"), "\xff\nann\nbob2\nabcdefghij\n" + std::string("cy\n"));
  const auto result = run(write_pipeline(dir_.file("input.txt"), {{"max_rejected", 2}, {"batch_size", 1}}));
  EXPECT_EQ(result.exit_code, 8) << result.err;
  EXPECT_NE(result.err.find("error budget exceeded: 3 of"), std::string::npos) << result.err;
  const json report = json::parse(read_file(dir_.file("report.json")));
  EXPECT_EQ(report.at("summary").at("rejected"), 3);
  EXPECT_EQ(report.at("summary").at("exit_code"), 8);
}

TEST_F(SdkPipeline, TheSourceIsAcknowledgedOncePerRecordWithItsFinalOutcome) {
  const std::string acks = dir_.file("acks.txt");
  json pipeline = {{"source", {{"plugin", "test-counter"}, {"config", {{"count", 300}, {"refuse_every", 7}, {"ack_file", acks}}}}},
                   {"transforms", {{{"plugin", "validate"},
                                    {"when", {{"field", "n"}, {"in", {"10", "20"}}}},
                                    {"config", {{"rules", {{"n", {{"max", 15}}}}}}}}}},
                   {"sink", {{"plugin", "test-sink"}, {"config", {{"mode", "reject_odd"}}}}},
                   {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file("report.json")}}}}}},
                   {"settings", {{"batch_size", 16}}}};
  write_file(dir_.file("pipeline.json"), pipeline.dump());
  const auto result = run_process({etl_host_binary(), "run", dir_.file("pipeline.json"), "--plugin-path", test_plugins("good")});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::map<std::uint64_t, std::string> acknowledged;
  for (const auto& line : lines_of(read_file(acks))) {
    const auto space = line.find(' ');
    const auto sequence = std::stoull(line.substr(0, space));
    EXPECT_TRUE(acknowledged.emplace(sequence, line.substr(space + 1)).second) << "acknowledged twice: " << line;
  }
  ASSERT_EQ(acknowledged.size(), 300u);
  // Every record's acknowledgement matches its report: the sequence is the record's identity.
  const json report = json::parse(read_file(dir_.file("report.json")));
  ASSERT_EQ(report.at("records").size(), 300u);
  std::size_t compared = 0;
  for (std::uint64_t n = 1; n <= 300; ++n) {
    std::string expected;
    if (n % 7 == 0) {
      expected = "rejected divisible";
    } else if (n == 20) {
      expected = "rejected validate.max";  // the when applies: 20 > 15
    } else if (n % 2 == 1) {
      expected = "rejected 23514";
    } else {
      expected = "ok -";
    }
    EXPECT_EQ(acknowledged.at(n), expected) << n;
    ++compared;
  }
  EXPECT_EQ(compared, 300u);
}

TEST_F(SdkPipeline, ASlowReporterDoesNotHoldTheSinkBack) {
  // 2,000 rows; the reporter sleeps 3 ms per record (6 s in all). The sink, with few rows in
  // flight, stores them in well under that: by the time all are in the table the reporter must
  // still be far behind. (When reporters ran on the sink's threads, under the ledger's lock,
  // the table could never get more than the rows in flight ahead of the report.)
  const auto& db = database_->env();
  const std::string slow = dir_.file("slow.txt");
  json pipeline = {{"source", {{"plugin", "test-counter"}, {"config", {{"count", 2000}, {"field", "token"}}}}},
                   {"sink", {{"plugin", "postgres-row-by-row"},
                             {"config", {{"host", db.at("DB_HOST")}, {"port", std::stoi(db.at("DB_PORT"))},
                                         {"user", db.at("DB_USER")}, {"password", db.at("DB_PASS")},
                                         {"dbname", db.at("DB_NAME")}, {"sslmode", db.at("DB_SSLMODE")},
                                         {"sslrootcert", db.at("DB_SSLROOTCERT")}, {"table", "secret_tokens"},
                                         {"columns", {{"token", "data"}}}, {"connections", 2}, {"max_in_flight", 8}}}}},
                   {"reporters", {{{"plugin", "test-slow-reporter"}, {"config", {{"path", slow}, {"sleep_ms", 3}}}}}}};
  write_file(dir_.file("pipeline.json"), pipeline.dump());
  BackgroundProcess run({etl_host_binary(), "run", dir_.file("pipeline.json"), "--plugin-path", test_plugins("good")});
  ASSERT_TRUE(eventually([] { return database_->tokens_in_table().size() == 2000; }, std::chrono::seconds(60)));
  const std::size_t reported_then = lines_of(read_file(slow)).size();
  EXPECT_LT(reported_then, 1000u) << "the reporter kept pace with the sink: it was holding it back";
  ASSERT_EQ(run.wait(std::chrono::seconds(60)), 0) << run.err();
  const auto lines = lines_of(read_file(slow));
  ASSERT_EQ(lines.size(), 2001u);
  EXPECT_EQ(lines.back(), "# summary 2000 0 0");
}

}  // namespace
}  // namespace etl::testing
