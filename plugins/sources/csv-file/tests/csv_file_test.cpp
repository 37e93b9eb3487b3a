// csv-file with the real etl-host, real plugins and a real PostgreSQL: a customers file with 1 %
// broken rows loads every good row, reports every bad one with file:line and its reason, and
// writes a reject file of the bad rows as they came; the same from a gzip file and from stdin.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

class CsvFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { database_ = std::make_unique<PostgresServer>(); }
  static void TearDownTestSuite() { database_.reset(); }
  void SetUp() override {
    database_->query(
        "DROP TABLE IF EXISTS customers; CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, "
        "email text NOT NULL CHECK (email LIKE '%@%'), dob date); GRANT ALL ON customers TO etl;");
  }

  /// 2,000 rows; every 100th is broken in one of the ways a real file is (20 in all), and two
  /// repeat an earlier id. Returns the text and, per bad line, the code it must be reported with.
  static std::string customers_csv(std::map<int, std::string>& bad_lines, std::set<int>& good_ids) {
    std::string text = "id,name,email,dob\n";
    int line = 1;
    const char* kinds[] = {"field_count", "quote", "utf8", "type", "date", "check", "duplicate"};
    for (int id = 1; id <= 2000; ++id) {
      ++line;
      if (id % 100 != 0) {
        text += std::to_string(id) + ",\"Name, " + std::to_string(id) + "\",user" + std::to_string(id) +
                "@example.com," + (id % 3 == 0 ? "" : "1990-01-" + std::to_string(10 + id % 18)) + "\n";
        good_ids.insert(id);
        continue;
      }
      const std::string kind = kinds[(id / 100) % 7];
      if (kind == "field_count") {
        text += std::to_string(id) + ",only two\n";
        bad_lines[line] = "csv.field_count";
      } else if (kind == "quote") {
        text += std::to_string(id) + ",Bad \"quote\",x@y,\n";
        bad_lines[line] = "csv.quote";
      } else if (kind == "utf8") {
        text += std::to_string(id) + ",Caf\xe9,cafe@example.com,\n";
        bad_lines[line] = "invalid_utf8";
      } else if (kind == "type") {
        text += "x" + std::to_string(id) + ",Typo,typo@example.com,\n";
        bad_lines[line] = "csv.type";
      } else if (kind == "date") {
        text += std::to_string(id) + ",Leap,leap@example.com,2001-02-29\n";
        bad_lines[line] = "csv.type";
      } else if (kind == "check") {
        text += std::to_string(id) + ",No mail,not-an-address,\n";
        bad_lines[line] = "23514";
      } else {
        text += std::to_string(id - 50) + ",Again,again@example.com,\n";  // an id stored 50 rows before
        bad_lines[line] = "23505";
      }
    }
    return text;
  }

  std::string pipeline(const std::string& path, const json& sink_settings = json::object(), const std::string& sink = "postgres") {
    const auto& db = database_->env();
    json pipeline = {
        {"source", {{"plugin", "csv-file"}, {"config", {{"path", path}, {"types", {{"id", "integer"}, {"dob", "date"}}}}}}},
        {"sink",
         {{"plugin", sink},
          {"config",
           {{"host", db.at("DB_HOST")}, {"port", std::stoi(db.at("DB_PORT"))}, {"user", db.at("DB_USER")},
            {"password", db.at("DB_PASS")}, {"dbname", db.at("DB_NAME")}, {"sslmode", db.at("DB_SSLMODE")},
            {"sslrootcert", db.at("DB_SSLROOTCERT")}, {"table", "customers"},
            {"columns", {{"id", "id"}, {"name", "name"}, {"email", "email"}, {"dob", "dob"}}},
            {"key_columns", {"id"}}}}}},
        {"reporters",
         {{{"plugin", "json"}, {"config", {{"path", dir_.file("report.json")}}}},
          {{"plugin", "csv"},
           {"config", {{"path", dir_.file("rejects.csv")}, {"layout", "input"}, {"statuses", {"rejected", "failed"}}}}}}},
        {"settings", {{"progress_interval", 0}}}};
    if (sink == "postgres-copy") pipeline["sink"]["config"].erase("key_columns");  // batches keep order by themselves
    pipeline["sink"]["config"].update(sink_settings);
    write_file(dir_.file("load.json"), pipeline.dump(2));
    return dir_.file("load.json");
  }

  /// The run's report checked against the file: each bad line once with its code, all good ids stored.
  void check_load(const ProcessResult& run, const std::string& shown_path, const std::map<int, std::string>& bad_lines,
                  const std::set<int>& good_ids) {
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const json report = json::parse(read_file(dir_.file("report.json")));
    std::map<int, std::string> reported;
    std::size_t ok = 0;
    for (const auto& record : report.at("records")) {
      const std::string origin = record.at("origin");
      ASSERT_EQ(origin.rfind(shown_path + ":", 0), 0u) << origin;
      const int line = std::stoi(origin.substr(shown_path.size() + 1));
      if (record.at("status") == "ok") {
        ++ok;
        continue;
      }
      EXPECT_EQ(record.at("status"), "rejected") << record;
      EXPECT_TRUE(reported.emplace(line, record.at("code")).second) << "line " << line << " reported twice";
      EXPECT_FALSE(record.at("error").get<std::string>().empty()) << record;
    }
    EXPECT_EQ(reported, bad_lines);
    EXPECT_EQ(ok, good_ids.size());
    std::set<int> stored;
    for (const auto& row : database_->query("SELECT id FROM customers")) stored.insert(std::stoi(row.at(0)));
    EXPECT_EQ(stored, good_ids);
    std::size_t at_sink = 0;  // SQLSTATEs; the source's codes are words
    for (const auto& [line, code] : bad_lines) at_sink += code[0] >= '0' && code[0] <= '9';
    EXPECT_EQ(report.at("summary").at("rejected_by_stage").at("source"), bad_lines.size() - at_sink);
    EXPECT_EQ(report.at("summary").at("rejected_by_stage").at("sink"), at_sink);
  }

  static inline std::unique_ptr<PostgresServer> database_;
  TempDir dir_;
};

TEST_F(CsvFile, ACustomersFileWithBrokenRowsLoadsEveryGoodRowAndNamesEveryBadOne) {
  std::map<int, std::string> bad_lines;
  std::set<int> good_ids;
  write_file(dir_.file("customers.csv"), customers_csv(bad_lines, good_ids));
  ASSERT_EQ(bad_lines.size(), 20u);
  const auto run = run_process({etl_host_binary(), "run", pipeline(dir_.file("customers.csv"))});
  check_load(run, dir_.file("customers.csv"), bad_lines, good_ids);
  // The reject file holds the 20 bad rows as they came, after a header: the file to fix and load again.
  const std::string rejects = read_file(dir_.file("rejects.csv"));
  EXPECT_EQ(std::count(rejects.begin(), rejects.end(), '\n'), 21) << rejects;
  EXPECT_NE(rejects.find("Caf\xe9"), std::string::npos);
  EXPECT_NE(rejects.find("2001-02-29"), std::string::npos);
}

TEST_F(CsvFile, ABatchLoadTriesTheRowsItSuspectsAloneAndStillNamesEveryBadOne) {
  // postgres-copy guesses from the table's definition: the repeated ids are suspected (a key
  // seen before) and tried alone; the CHECK over an expression is not guessed, and its rows are
  // found by the COPY that meets them.
  std::map<int, std::string> bad_lines;
  std::set<int> good_ids;
  write_file(dir_.file("customers.csv"), customers_csv(bad_lines, good_ids));
  const auto run = run_process({etl_host_binary(), "run",
                                pipeline(dir_.file("customers.csv"), {{"batch_rows", 500}, {"connections", 1}}, "postgres-copy")});
  check_load(run, dir_.file("customers.csv"), bad_lines, good_ids);
  const auto repeated = std::count_if(bad_lines.begin(), bad_lines.end(), [](const auto& bad) { return bad.second == "23505"; });
  ASSERT_EQ(repeated, 3);
  EXPECT_NE(run.err.find("3 suspected row(s) tried alone, 3 of them refused"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("refused the function"), std::string::npos) << run.err;
}

TEST_F(CsvFile, GzipAndStdinReadTheSame) {
  std::map<int, std::string> bad_lines;
  std::set<int> good_ids;
  write_file(dir_.file("customers.csv"), customers_csv(bad_lines, good_ids));
  ASSERT_EQ(run_process({"/bin/sh", "-c", "gzip -c '" + dir_.file("customers.csv") + "' > '" + dir_.file("customers.csv.gz") + "'"})
                .exit_code,
            0);
  check_load(run_process({etl_host_binary(), "run", pipeline(dir_.file("customers.csv.gz"))}), dir_.file("customers.csv.gz"),
             bad_lines, good_ids);
  SetUp();
  check_load(run_process({"/bin/sh", "-c",
                          "'" + etl_host_binary() + "' run '" + pipeline("-") + "' < '" + dir_.file("customers.csv") + "'"}),
             "stdin", bad_lines, good_ids);
}

TEST_F(CsvFile, AFileThatCannotBeReadFailsBeforeAnyRow) {
  const auto missing = run_process({etl_host_binary(), "run", pipeline(dir_.file("nope.csv"))});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("nope.csv: cannot open"), std::string::npos) << missing.err;
  write_file(dir_.file("dup.csv"), "id,name,id\n1,a,1\n");
  const auto duplicate = run_process({etl_host_binary(), "run", pipeline(dir_.file("dup.csv"))});
  EXPECT_NE(duplicate.exit_code, 0);
  EXPECT_NE(duplicate.err.find("names column \"id\" twice"), std::string::npos) << duplicate.err;
}

}  // namespace
}  // namespace etl::testing
