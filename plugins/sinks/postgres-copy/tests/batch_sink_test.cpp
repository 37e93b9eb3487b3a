// postgres-copy against a real, throwaway PostgreSQL server: every row one outcome, each bad
// row rejected with its own error, the table holding exactly the rows reported ok, also when
// connections are reset or the server restarts in the middle of a load.

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "plugin_harness.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

class BatchSink : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new PostgresServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override {
    server_->query(
        "DROP TABLE IF EXISTS people; "
        "CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, born date, score numeric CHECK (score >= 0)); "
        "GRANT ALL ON people TO etl;");
  }

  static json config(json overrides = json::object()) {
    json c = {{"host", server_->get("DB_HOST")}, {"port", std::stoi(server_->get("DB_PORT"))},
              {"user", server_->get("DB_USER")}, {"password", server_->get("DB_PASS")},
              {"dbname", server_->get("DB_NAME")}, {"table", "people"},
              {"columns", {{"id", "id"}, {"name", "name"}, {"born", "born"}, {"score", "score"}}},
              {"connect_timeout", 5}, {"batch_rows", 500}, {"connections", 3}};
    c.update(overrides);
    return c;
  }

  struct Written {
    std::map<std::uint64_t, sdk::Outcome> outcomes;
    std::size_t deliveries = 0;
    std::string error;
    std::chrono::steady_clock::time_point finished;  // when finish() returned
  };

  /// Writes `batch` in chunks; `during` runs once, on a thread of its own, after `after` chunks.
  static Written write_all(const json& sink_config, const sdk::Batch& batch, std::size_t chunk = 256,
                           std::function<void()> during = {}, std::size_t after = 0) {
    Written written;
    CollectingReceiver receiver;
    std::future<void> fault;
    try {
      auto sink = create_plugin<sdk::Sink>(bundled_plugin("postgres-copy"), sink_config);
      sink.object->open(receiver);
      for (std::size_t at = 0, chunks = 0; at < batch.size(); at += chunk, ++chunks) {
        if (during && chunks == after) fault = std::async(std::launch::async, during);
        sink.object->write(std::span(batch).subspan(at, std::min(chunk, batch.size() - at)));
      }
      sink.object->finish();
    } catch (const std::exception& e) {
      written.error = e.what();
    }
    written.finished = std::chrono::steady_clock::now();
    if (fault.valid()) fault.get();
    written.outcomes = receiver.outcomes();
    written.deliveries = receiver.deliveries();
    return written;
  }

  static sdk::Record person(std::uint64_t sequence, const std::string& id, const std::string& name,
                            const std::string& born, const std::string& score) {
    sdk::Record record;
    record.set("id", id);
    record.set("name", name);
    record.set("born", born);
    record.set("score", score);
    record.sequence = sequence;
    return record;
  }

  /// `count` people; every 97th has a negative score (CHECK), every 89th an unreadable date,
  /// every 101st repeats an id from 50 rows before (PRIMARY KEY), and every 103rd is
  /// "abc" for an id (not an integer).
  static sdk::Batch people(std::size_t count, std::size_t name_padding = 0) {
    sdk::Batch batch;
    for (std::size_t i = 1; i <= count; ++i) {
      std::string id = std::to_string(i);
      std::string born = "1990-01-" + std::to_string(1 + i % 28);
      std::string score = std::to_string(i % 1000) + ".5";
      if (i % 97 == 0) score = "-1";
      if (i % 89 == 0) born = "1990-02-30";
      if (i % 101 == 0 && i > 50) id = std::to_string(i - 50);
      if (i % 103 == 0) id = "abc";
      batch.push_back(person(i, id, "person\t" + std::to_string(i) + std::string(name_padding, 'x'), born, score));
    }
    return batch;
  }

  /// The SQLSTATE a row of people() should be rejected with, or "" for a good row. Of two
  /// rows with one id the first is the one stored.
  static std::string expected_code(std::size_t i) {
    // The columns in COPY's order (born, id, name, score): types are read before any
    // constraint is checked, and the CHECK before the unique index.
    if (i % 89 == 0) return "22008";
    if (i % 103 == 0) return "22P02";
    if (i % 97 == 0) return "23514";
    if (i % 101 == 0 && i > 50 && expected_code(i - 50).empty()) return "23505";
    return "";
  }

  static std::set<std::string> ids_in_table() {
    std::set<std::string> ids;
    for (const auto& row : server_->query("SELECT id::text FROM people")) ids.insert(row.at(0));
    return ids;
  }

  /// Every record one outcome; the rows reported ok are in the table, and the table holds no
  /// other row (unless reported commit outcome unknown).
  static void expect_table_matches_outcomes(const sdk::Batch& batch, const Written& written) {
    ASSERT_EQ(written.deliveries, batch.size());
    ASSERT_EQ(written.outcomes.size(), batch.size());
    const auto stored = ids_in_table();
    EXPECT_EQ(std::stoul(server_->query("SELECT count(*) FROM people").at(0).at(0)), stored.size());
    std::set<std::string> ok, maybe;
    for (const auto& record : batch) {
      const auto& outcome = written.outcomes.at(record.sequence);
      if (outcome.status == sdk::Status::ok) ok.insert(*record.text("id"));
      if (outcome.is_commit_unknown()) maybe.insert(*record.text("id"));
    }
    for (const auto& id : ok) EXPECT_TRUE(stored.contains(id)) << "reported ok, not stored: " << id;
    for (const auto& id : stored) EXPECT_TRUE(ok.contains(id) || maybe.contains(id)) << "stored, not reported ok: " << id;
  }

  /// people(5000) on one connection (of two rows with one id, the first is the one stored).
  static void expect_each_bad_row_rejected_with_its_own_error(bool guess_failures) {
    const auto batch = people(5000);
    const auto written = write_all(config({{"connections", 1}, {"guess_failures", guess_failures}}), batch);
    ASSERT_EQ(written.error, "");
    std::size_t rejected = 0;
    for (std::size_t i = 1; i <= batch.size(); ++i) {
      const auto& outcome = written.outcomes.at(i);
      const std::string code = expected_code(i);
      if (code.empty()) {
        EXPECT_EQ(outcome.status, sdk::Status::ok) << i << ": " << outcome.message;
        continue;
      }
      ++rejected;
      EXPECT_EQ(outcome.status, sdk::Status::rejected) << i;
      EXPECT_EQ(outcome.code, code) << i << ": " << outcome.message;
      if (code == "23514") { EXPECT_NE(outcome.message.find("people_score_check"), std::string::npos) << outcome.message; }
      if (code == "22008") { EXPECT_NE(outcome.message.find("1990-02-30"), std::string::npos) << outcome.message; }
      if (code == "22P02") { EXPECT_NE(outcome.message.find("\"abc\""), std::string::npos) << outcome.message; }
    }
    EXPECT_GT(rejected, 150u);
    expect_table_matches_outcomes(batch, written);
    EXPECT_EQ(ids_in_table().size(), batch.size() - rejected);
    // Tabs in values arrive as they were sent.
    EXPECT_EQ(server_->query("SELECT name FROM people WHERE id = 1").at(0).at(0), "person\t1");
  }

  static PostgresServer* server_;
};
PostgresServer* BatchSink::server_ = nullptr;

TEST_F(BatchSink, EachBadRowIsRejectedWithItsOwnErrorAndEveryGoodRowStored) {
  // The bad rows are suspected from the table's definition and tried alone after the others.
  expect_each_bad_row_rejected_with_its_own_error(true);
}

TEST_F(BatchSink, EachBadRowIsRejectedWithItsOwnErrorWithoutGuessing) {
  // Every bad row found by the line its COPY names.
  expect_each_bad_row_rejected_with_its_own_error(false);
}

TEST_F(BatchSink, GuessesOnlyDecideTheOrderNeverTheOutcome) {
  // Rows suspected in vain are stored; bad rows of kinds not guessed (a CHECK over an
  // expression, a key already in the table) are found by COPY as before.
  std::map<std::uint64_t, std::string> expected;  // sequence -> SQLSTATE ("" for ok)
  std::set<std::uint64_t> suspected_in_vain;
  sdk::Batch batch;
  for (std::uint64_t i = 1; i <= 300; ++i) {
    std::string id = std::to_string(100 + i), name = "p" + std::to_string(i), born = "1990-01-01", score = "1";
    std::string code;
    switch (i % 30) {
      case 1: born = "19900102"; suspected_in_vain.insert(i); break;  // not YYYY-MM-DD, a date all the same
      case 2: score = "+5"; suspected_in_vain.insert(i); break;
      case 3: name = "far too long"; code = "22001"; break;
      case 4: score = "-0.5"; code = "23514"; break;
      case 5:  // the id of a good row ten before
        if (i > 30) id = std::to_string(100 + i - 10), code = "23505";
        break;
      case 6: name = "x"; code = "23514"; break;                         // length(name) > 1: not guessed
      case 7: id = "7"; code = "23505"; break;                           // a key already stored
      default: break;
    }
    expected[i] = code;
    batch.push_back(person(i, id, name, born, score));
  }
  // The names stored, in the order they went in: input order, but with guessing the rows
  // suspected in vain after the rest of their batch (one batch here).
  std::vector<std::string> in_order, suspects_last;
  for (const auto& [sequence, code] : expected) {
    if (code.empty() && !suspected_in_vain.contains(sequence)) in_order.push_back("p" + std::to_string(sequence));
  }
  for (const auto sequence : suspected_in_vain) suspects_last.push_back("p" + std::to_string(sequence));
  for (const bool guessing : {true, false}) {
    SCOPED_TRACE(guessing ? "guessing" : "not guessing");
    // A new table each time: its rows' physical order (ctid) is the order they went in.
    server_->query(
        "DROP TABLE IF EXISTS people; "
        "CREATE TABLE people (id int PRIMARY KEY, name varchar(8) NOT NULL, born date, "
        "score numeric(5,1) CHECK (score >= 0) CHECK (length(name) > 1)); "
        "INSERT INTO people VALUES (7, 'old', '2000-01-01', 1); GRANT ALL ON people TO etl;");
    const auto written = write_all(config({{"connections", 1}, {"batch_rows", 300}, {"guess_failures", guessing}}), batch);
    ASSERT_EQ(written.error, "");
    ASSERT_EQ(written.deliveries, batch.size());
    for (const auto& [sequence, code] : expected) {
      const auto& outcome = written.outcomes.at(sequence);
      EXPECT_EQ(outcome.status, code.empty() ? sdk::Status::ok : sdk::Status::rejected) << sequence << ": " << outcome.message;
      EXPECT_EQ(outcome.code, code) << sequence << ": " << outcome.message;
    }
    std::vector<std::string> names;
    for (const auto& row : server_->query("SELECT name FROM people WHERE id <> 7 ORDER BY ctid")) names.push_back(row.at(0));
    std::vector<std::string> wanted = in_order;
    if (guessing) {
      wanted.insert(wanted.end(), suspects_last.begin(), suspects_last.end());
    } else {
      wanted.clear();
      for (const auto& [sequence, code] : expected) {
        if (code.empty()) wanted.push_back("p" + std::to_string(sequence));
      }
    }
    EXPECT_EQ(names, wanted);
  }
}

TEST_F(BatchSink, ASessionThatLosesItsFunctionGoesOnWithoutIt) {
  // A pooler that resets sessions, or a DISCARD, takes the session's pg_temp.etl_insert_each
  // away mid-load: the batch that finds it gone is written again, its suspects one statement
  // each, and the run goes on (without this, 42883 would stop it as an error of every row).
  const auto batch = people(20000);
  const auto drop_functions = [] {
    server_->query(
        "DO $$ DECLARE f record; BEGIN FOR f IN SELECT p.oid::regprocedure AS name FROM pg_proc p "
        "WHERE p.proname = 'etl_insert_each' LOOP EXECUTE 'DROP FUNCTION ' || f.name; END LOOP; END $$");
  };
  const auto written = write_all(config({{"connections", 1}}), batch, 256, drop_functions, 2);
  ASSERT_EQ(written.error, "");
  for (std::size_t i = 1; i <= batch.size(); ++i) {
    const auto& outcome = written.outcomes.at(i);
    const std::string code = expected_code(i);
    EXPECT_EQ(outcome.status, code.empty() ? sdk::Status::ok : sdk::Status::rejected) << i << ": " << outcome.message;
    EXPECT_EQ(outcome.code, code) << i << ": " << outcome.message;
  }
  expect_table_matches_outcomes(batch, written);
}

TEST_F(BatchSink, NoticesCuttingPiecesShortInARunLoseAndReorderNothing) {
  // Long rows (pieces of several 64 KiB writes) and a trigger's NOTICE for every row: the
  // server speaks while a COPY's data is still going out, so pieces are cut short, and a COPY
  // of the same run after one cut short is refused (CopyFail) for the rest to go first.
  server_->query(
      "CREATE FUNCTION people_notice() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE NOTICE 'row %', NEW.id; RETURN NEW; END $$; "
      "CREATE TRIGGER people_notice BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION people_notice();");
  const auto batch = people(3000, 1500);
  // Without guessing: the bad rows must meet the COPY for its pieces to be retried in runs.
  const auto written = write_all(config({{"connections", 1}, {"batch_rows", 1000}, {"guess_failures", false}}), batch);
  server_->query("DROP TRIGGER people_notice ON people; DROP FUNCTION people_notice();");
  ASSERT_EQ(written.error, "");
  EXPECT_EQ(written.deliveries, batch.size());
  for (std::size_t i = 1; i <= batch.size(); ++i) {
    const std::string code = expected_code(i);
    const auto& outcome = written.outcomes.at(i);
    EXPECT_EQ(outcome.status, code.empty() ? sdk::Status::ok : sdk::Status::rejected) << i << ": " << outcome.message;
    if (!code.empty()) { EXPECT_EQ(outcome.code, code) << i << ": " << outcome.message; }
  }
  expect_table_matches_outcomes(batch, written);
}

TEST_F(BatchSink, SeveralConnectionsSettleEveryRowOnce) {
  const auto batch = people(20000);
  const auto written = write_all(config({{"connections", 4}, {"batch_rows", 700}}), batch, 1000);
  ASSERT_EQ(written.error, "");
  std::size_t ok = 0;
  for (std::size_t i = 1; i <= batch.size(); ++i) {
    const auto& outcome = written.outcomes.at(i);
    const std::string code = expected_code(i);
    // A duplicate pair may be split over two connections: then either may be the stored one.
    if (code == "23505" || ((i + 50) % 101 == 0 && expected_code(i + 50) == "23505")) continue;
    EXPECT_EQ(outcome.status, code.empty() ? sdk::Status::ok : sdk::Status::rejected) << i << ": " << outcome.message;
    if (!code.empty()) { EXPECT_EQ(outcome.code, code) << i; }
    ok += outcome.status == sdk::Status::ok;
  }
  EXPECT_GT(ok, 18000u);
  expect_table_matches_outcomes(batch, written);
}

TEST_F(BatchSink, ErrorsWithoutALineAreFoundByBisection) {
  // A deferrable unique constraint is checked at the end of the COPY: its error names no line.
  server_->query(
      "DROP TABLE IF EXISTS people; "
      "CREATE TABLE people (id int UNIQUE DEFERRABLE INITIALLY DEFERRED, name text, born date, score numeric); "
      "GRANT ALL ON people TO etl;");
  sdk::Batch batch;
  for (std::size_t i = 1; i <= 2000; ++i) {
    batch.push_back(person(i, std::to_string(i % 37 == 0 ? i - 1 : i), "p", "2000-01-01", "1"));
  }
  // Without guessing (the duplicates would be suspected and tried alone).
  const auto written = write_all(config({{"connections", 1}, {"guess_failures", false}}), batch);
  ASSERT_EQ(written.error, "");
  for (std::size_t i = 1; i <= batch.size(); ++i) {
    const auto& outcome = written.outcomes.at(i);
    EXPECT_EQ(outcome.status, i % 37 == 0 ? sdk::Status::rejected : sdk::Status::ok) << i << ": " << outcome.message;
    if (i % 37 == 0) { EXPECT_EQ(outcome.code, "23505"); }
  }
  expect_table_matches_outcomes(batch, written);
}

TEST_F(BatchSink, UpsertThroughAStagingTable) {
  server_->query("INSERT INTO people VALUES (1, 'old', '1980-01-01', 1), (2, 'old', '1980-01-01', 1)");
  sdk::Batch batch;
  batch.push_back(person(1, "1", "new", "1990-01-01", "5"));
  batch.push_back(person(2, "2", "bad", "1990-01-01", "-5"));   // CHECK: the stored row stays
  batch.push_back(person(3, "3", "first", "1990-01-01", "1"));
  batch.push_back(person(4, "3", "second", "1990-01-01", "2"));  // the same key later: it wins
  batch.push_back(person(5, "4", "date", "1990-13-01", "2"));    // refused at the load
  batch.push_back(person(6, "5", "fine", "1990-01-01", "2"));
  const auto written = write_all(config({{"mode", "upsert"}, {"conflict_columns", {"id"}}, {"connections", 1}}), batch);
  ASSERT_EQ(written.error, "");
  ASSERT_EQ(written.outcomes.size(), 6u);
  for (const std::uint64_t ok : {1u, 3u, 4u, 6u}) EXPECT_EQ(written.outcomes.at(ok).status, sdk::Status::ok) << ok;
  EXPECT_EQ(written.outcomes.at(2).status, sdk::Status::rejected);
  EXPECT_EQ(written.outcomes.at(2).code, "23514");
  EXPECT_EQ(written.outcomes.at(5).status, sdk::Status::rejected);
  EXPECT_EQ(written.outcomes.at(5).code, "22008");
  EXPECT_EQ(server_->query("SELECT id::text, name, score::text FROM people ORDER BY id"),
            (std::vector<std::vector<std::string>>{{"1", "new", "5"}, {"2", "old", "1"}, {"3", "second", "2"}, {"5", "fine", "2"}}));
}

TEST_F(BatchSink, ConfigThatBatchesCannotDoIsRefusedByName) {
  const auto update = write_all(config({{"mode", "update"}, {"key_columns", {"id"}}}), people(1));
  EXPECT_NE(update.error.find("/mode"), std::string::npos) << update.error;
  EXPECT_NE(update.error.find("upsert"), std::string::npos) << update.error;
  const auto casts = write_all(config({{"casts", {{"born", "date"}}}}), people(1));
  EXPECT_NE(casts.error.find("unknown key \"casts\""), std::string::npos) << casts.error;
  const auto table = write_all(config({{"table", "no_such_table"}}), people(1));
  EXPECT_NE(table.error.find("no_such_table"), std::string::npos) << table.error;
  EXPECT_NE(table.error.find("42P01"), std::string::npos) << table.error;
}

TEST_F(BatchSink, ConnectionsResetMidLoadLoseAndDoubleNothing) {
  const auto batch = people(60000);
  std::atomic<int> ended{0};
  auto reset = [&] {
    // Ends the sink's server processes three times while it loads.
    for (int round = 0; round < 3; ++round) {
      const auto killed = server_->query(
          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'etl' AND pid <> pg_backend_pid()");
      ended += std::stoi(killed.at(0).at(0));
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
  };
  const auto written = write_all(config({{"retry", {{"attempts", 8}, {"initial_delay", 0.05}}}}), batch, 1000, reset, 5);
  ASSERT_EQ(written.error, "");
  EXPECT_GT(ended.load(), 0);
  expect_table_matches_outcomes(batch, written);
  std::size_t ok = 0;
  for (const auto& [sequence, outcome] : written.outcomes) ok += outcome.status == sdk::Status::ok;
  EXPECT_GT(ok, 55000u);  // all but the bad rows (and the few with an unknown commit)
}

TEST_F(BatchSink, AServerCrashMidLoadLosesAndDoublesNothing) {
  const auto batch = people(60000);
  std::chrono::steady_clock::time_point back;
  auto crash = [&] {
    server_->control("restart -m immediate");
    back = std::chrono::steady_clock::now();
  };
  const auto written = write_all(config({{"retry", {{"attempts", 10}, {"initial_delay", 0.2}, {"max_delay", 2}}}}), batch,
                                 1000, crash, 10);
  ASSERT_EQ(written.error, "");
  // The load could not end while the server was down: it was still going when the server came back.
  EXPECT_LT(back, written.finished);
  expect_table_matches_outcomes(batch, written);
  std::size_t ok = 0, unknown = 0;
  for (const auto& [sequence, outcome] : written.outcomes) {
    ok += outcome.status == sdk::Status::ok;
    unknown += outcome.is_commit_unknown();
  }
  EXPECT_GT(ok, 50000u);
  EXPECT_LE(unknown, 3u * 500u);  // at most the batches whose COMMIT was on its way
}

}  // namespace
}  // namespace etl::testing
