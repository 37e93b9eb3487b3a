// postgres-cdc through the real etl-host against real servers started with wal_level=logical:
// every kind of change as records, the slot confirmed up to the server's WAL position; a
// replication into a second database through two SIGKILLs of etl-host and a restart of the
// target, the tables equal afterwards; and the configurations that cannot work, each with an
// error that says what to do.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <thread>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kLogical = "-c wal_level=logical -c max_wal_senders=10 -c max_replication_slots=10";

class PostgresCdc : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    source_ = std::make_unique<PostgresServer>(kLogical);
    source_->query("ALTER ROLE etl REPLICATION", "postgres");
  }
  static void TearDownTestSuite() { source_.reset(); }

  void SetUp() override {
    for (const auto& slot : source_->query("SELECT slot_name FROM pg_replication_slots")) {
      source_->query("SELECT pg_drop_replication_slot('" + slot.at(0) + "')");
    }
    source_->query("DROP PUBLICATION IF EXISTS changes, etl_items; DROP TABLE IF EXISTS items, loose; "
                   "SET ROLE etl; CREATE TABLE items (id int PRIMARY KEY, name text, qty int NOT NULL DEFAULT 0, "
                   "doc jsonb, raw bytea, price numeric)");
  }

  json cdc_config(const std::string& end) const {
    json config = source_->connection_config();
    config.update({{"slot", "etl_items"}, {"publication", "changes"}, {"tables", {"public.items"}},
                   {"create_publication", true}, {"status_interval", 0.5}, {"end", end}});
    return config;
  }

  std::string pipeline(const json& source_config, const json& sink, const std::string& name = "cdc") {
    const json document = {
        {"name", "items cdc"},
        {"source", {{"plugin", "postgres-cdc"}, {"config", source_config}}},
        {"sink", sink},
        {"reporters", {{{"plugin", "json"}, {"config", {{"path", dir_.file(name + "-report.json")}}}}}},
        {"settings", {{"progress_interval", 0}, {"state", {{"store", "file"}, {"path", dir_.file("state")}, {"commit_interval", 0.2}}}}}};
    write_file(dir_.file(name + ".json"), document.dump(2));
    return dir_.file(name + ".json");
  }

  /// pipelines/cdc-replicate.json, as a user runs it: SOURCE_DB_* (the source) and DB_* (`target`)
  /// in the environment, state and reports in this test's folder.
  ProcessOptions shipped_pipeline_environment(const PostgresServer& target) const {
    ProcessOptions environment;
    for (const auto& [key, value] : source_->env()) {
      if (key.rfind("DB_", 0) == 0) environment.set_env["SOURCE_" + key] = value;
    }
    for (const auto& [key, value] : target.env()) environment.set_env[key] = value;
    environment.set_env["CDC_STATUS_INTERVAL"] = "0.5";
    environment.set_env["STATE_DIR"] = dir_.file("state");
    environment.set_env["REPORT_DIR"] = dir_.path();
    return environment;
  }

  std::string wal_position() const { return source_->query("SELECT pg_current_wal_lsn()").at(0).at(0); }
  bool slot_confirmed_at_least(const std::string& lsn) const {
    return source_->query("SELECT confirmed_flush_lsn >= '" + lsn + "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'etl_items'")
               .at(0).at(0) == "t";
  }

  static inline std::unique_ptr<PostgresServer> source_;
  TempDir dir_;
};

TEST_F(PostgresCdc, EveryKindOfChangeIsARecordInCommitOrderAndTheSlotIsConfirmedToTheEnd) {
  const std::string file = pipeline(cdc_config("caught_up"), {{"plugin", "null"}});
  const auto first = run_process({etl_host_binary(), "run", file});  // creates the publication and the slot
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.err.find("created replication slot \"etl_items\""), std::string::npos) << first.err;

  source_->query("SET ROLE etl; "
                 "INSERT INTO items (id, name, doc, raw, price) VALUES (1, 'one', '{\"a\": 1}', '\\x0102', 12.50), (2, 'two', NULL, NULL, NULL); "
                 "UPDATE items SET qty = 5 WHERE id = 1; UPDATE items SET id = 3 WHERE id = 2; DELETE FROM items WHERE id = 1; "
                 "TRUNCATE items");
  const std::string end = wal_position();
  const auto second = run_process({etl_host_binary(), "run", file});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const json records = json::parse(read_file(dir_.file("cdc-report.json"))).at("records");
  ASSERT_EQ(records.size(), 6u) << records.dump(1);
  std::vector<std::string> ops;
  for (const auto& record : records) ops.push_back(record.at("record").at("_op"));
  EXPECT_EQ(ops, (std::vector<std::string>{"insert", "insert", "update", "update", "delete", "truncate"}));
  EXPECT_EQ(records[0].at("record").at("id"), 1);
  EXPECT_EQ(records[0].at("record").at("doc"), json::parse(R"({"a": 1})"));
  EXPECT_EQ(records[0].at("record").at("raw"), "\\x0102");
  EXPECT_EQ(records[0].at("record").at("price"), "12.50");
  EXPECT_EQ(records[0].at("record").at("_table"), "public.items");
  EXPECT_EQ(records[0].at("status"), "ok");
  EXPECT_EQ(records[2].at("record").at("qty"), 5);
  EXPECT_EQ(records[3].at("record").at("id"), 3);
  EXPECT_EQ(records[3].at("record").at("_old"), json::parse(R"({"id": 2})"));  // the key changed: the old one comes along
  EXPECT_EQ(records[4].at("record").at("id"), 1);
  EXPECT_EQ(records[0].at("record").at("_xid"), records[1].at("record").at("_xid"));  // one transaction
  EXPECT_TRUE(eventually([&] { return slot_confirmed_at_least(end); }, 5s))
      << source_->query("SELECT confirmed_flush_lsn FROM pg_replication_slots").at(0).at(0) << " < " << end;

  // Nothing more: the next run hands over nothing, every change was confirmed.
  const auto third = run_process({etl_host_binary(), "run", file, "--summary-json", dir_.file("summary.json")});
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_EQ(json::parse(read_file(dir_.file("summary.json"))).at("received"), 0);

  // state show asks the server: the slot's confirmed LSN against the WAL end, the lag in bytes.
  const auto shown = [&] {
    const auto state = run_process({etl_host_binary(), "state", "show", file, "--json"});
    EXPECT_EQ(state.exit_code, 0) << state.err;
    return json::parse(state.out);
  };
  const json caught_up = shown();
  ASSERT_TRUE(caught_up.contains("input")) << caught_up.dump(1);
  EXPECT_EQ(caught_up.at("input").at("slot"), "etl_items");
  EXPECT_EQ(caught_up.at("input").at("slot_active"), false);
  EXPECT_TRUE(caught_up.at("input").at("confirmed_lsn").is_string()) << caught_up.dump(1);
  source_->query("SET ROLE etl; INSERT INTO items (id, name) SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g");
  const json behind = shown();
  EXPECT_GT(behind.at("input").at("lag_bytes").get<long>(), 100000) << behind.dump(1);  // the 1,000 rows' WAL
  EXPECT_GT(behind.at("input").at("committed_lag_bytes").get<long>(), 100000) << behind.dump(1);
  const auto text = run_process({etl_host_binary(), "state", "show", file});
  EXPECT_NE(text.out.find("input now (as postgres-cdc sees it)"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("lag_bytes"), std::string::npos) << text.out;
}

TEST_F(PostgresCdc, ReplicationSurvivesTwoKillsARestartOfTheTargetAndOfTheSourceAndEndsEqual) {
  PostgresServer target;
  target.query("SET ROLE etl; " + read_file(source_dir() + "/pipelines/sql/cdc-demo.sql"));
  source_->query("SET ROLE etl; DROP TABLE items; " + read_file(source_dir() + "/pipelines/sql/cdc-demo.sql"));
  const ProcessOptions environment = shipped_pipeline_environment(target);
  const std::string file = source_dir() + "/pipelines/cdc-replicate.json";
  const auto slot_confirmed = [&](const std::string& lsn) {
    return source_->query("SELECT confirmed_flush_lsn >= '" + lsn + "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'etl_items'")
               .at(0).at(0) == "t";
  };
  // The slot first (a run that is stopped once it streams), so that the workload is all captured.
  {
    BackgroundProcess run({etl_host_binary(), "run", file}, environment);
    // The (empty) snapshot's end is the first position: once it is committed, later runs stream.
    ASSERT_TRUE(eventually([&] {
      const auto shown = run_process({etl_host_binary(), "state", "show", file, "--json"}, environment);
      return shown.exit_code == 0 && json::parse(shown.out).at("position").is_object();
    })) << run.err();
    run.signal(SIGTERM);
    ASSERT_EQ(run.wait(20s), 143) << run.err();
  }

  // 50,000 changes: 30,000 inserts, 15,000 updates, 5,000 deletes, in transactions of 500.
  std::atomic<bool> workload_done{false};
  std::thread workload([&] {
    for (int block = 0; block < 60; ++block) {
      const int from = block * 500 + 1;
      const int to = from + 499;
      std::string sql = "SET ROLE etl; BEGIN; INSERT INTO items (id, name) SELECT g, 'n' || g FROM generate_series(" +
                        std::to_string(from) + ", " + std::to_string(to) + ") g; ";
      sql += "UPDATE items SET qty = qty + 1, name = name || '+' WHERE id BETWEEN " + std::to_string(from) + " AND " +
             std::to_string(from + 249) + "; ";
      sql += "DELETE FROM items WHERE id BETWEEN " + std::to_string(from + 400) + " AND " + std::to_string(from + 482) + "; COMMIT";
      source_->query(sql);
    }
    workload_done = true;
  });
  const auto stored = [&] { return std::stol(target.query("SELECT count(*) FROM items").at(0).at(0)); };
  long last = 0;
  for (int kill = 0; kill < 2; ++kill) {
    BackgroundProcess run({etl_host_binary(), "run", file}, environment);
    ASSERT_TRUE(eventually([&] { return stored() > last + 2000; }, 60s)) << run.err();
    last = stored();
    run.signal(SIGKILL);
    run.wait(10s);
  }
  BackgroundProcess run({etl_host_binary(), "run", file}, environment);
  ASSERT_TRUE(eventually([&] { return stored() > last + 2000; }, 60s)) << run.err();
  // The target restarts while changes stream: the sink waits for it (when_unavailable: wait),
  // holding the stream back; nothing is failed, nothing skipped.
  target.control("restart -m fast");
  workload.join();
  source_->control("restart -m fast");  // the replication connection is lost: waited out, resumed
  const std::string end = wal_position();
  const auto rows = [](const PostgresServer& server) {
    return server.query("SELECT id, name, qty FROM items ORDER BY id");
  };
  EXPECT_TRUE(eventually([&] { return rows(target) == rows(*source_); }, 120s))
      << "source " << rows(*source_).size() << " rows, target " << rows(target).size() << "\n" << run.err();
  EXPECT_EQ(rows(*source_).size(), 60u * (500 - 83));
  EXPECT_TRUE(eventually([&] { return slot_confirmed(end); }, 20s)) << run.err();
  EXPECT_TRUE(run.wait_for_err("streams again", 30s)) << run.err();  // it saw the restart and resumed
  EXPECT_NE(run.err().find("rows wait for it (when_unavailable: wait)"), std::string::npos) << run.err();
  EXPECT_TRUE(run.running()) << run.err();  // the restart ended nothing
  run.signal(SIGTERM);
  EXPECT_EQ(run.wait(20s), 143) << run.err();
  const std::string failures = read_file(dir_.file("cdc-replicate-failures.csv"));
  EXPECT_EQ(lines_of(failures).size(), 1u) << failures;  // the header alone: no change failed or was rejected
}

TEST_F(PostgresCdc, AnInitialSnapshotWithChangesDuringItAndARestartInItEndsEqual) {
  PostgresServer target;
  target.query("SET ROLE etl; " + read_file(source_dir() + "/pipelines/sql/cdc-demo.sql"));
  source_->query("SET ROLE etl; DROP TABLE items; " + read_file(source_dir() + "/pipelines/sql/cdc-demo.sql") +
                 "INSERT INTO items (id, name) SELECT g, 'old ' || g FROM generate_series(1, 100000) g");
  const ProcessOptions environment = shipped_pipeline_environment(target);
  BackgroundProcess run({etl_host_binary(), "run", source_dir() + "/pipelines/cdc-replicate.json"}, environment);
  ASSERT_TRUE(run.wait_for_err("reading 1 table(s) in its snapshot first")) << run.err();
  // Changes while the snapshot is read: to rows it holds, and new ones.
  for (int block = 0; block < 20; ++block) {
    const std::string low = std::to_string(block * 5000 + 1);
    const std::string high = std::to_string(block * 5000 + 100);
    source_->query("SET ROLE etl; BEGIN; UPDATE items SET qty = qty + 7, name = 'changed' WHERE id BETWEEN " + low + " AND " + high +
                   "; DELETE FROM items WHERE id = " + std::to_string(block * 5000 + 2500) +
                   "; INSERT INTO items (id, name) VALUES (" + std::to_string(200000 + block) + ", 'new'); COMMIT");
  }
  // The source restarts while the snapshot is read (100,000 rows take longer than these changes):
  // the snapshot is taken again, in a service by itself.
  ASSERT_EQ(run.err().find("snapshot read: "), std::string::npos) << run.err();
  source_->control("restart -m fast");
  EXPECT_TRUE(run.wait_for_err("reading the snapshot again", 60s)) << run.err();
  const auto rows = [](const PostgresServer& server) { return server.query("SELECT id, name, qty FROM items ORDER BY id"); };
  EXPECT_TRUE(eventually([&] { return rows(target) == rows(*source_); }, 180s))
      << "source " << rows(*source_).size() << " rows, target " << rows(target).size() << "\n" << run.err();
  EXPECT_EQ(rows(*source_).size(), 100000u);  // 20 deleted, 20 added
  EXPECT_NE(run.err().find("snapshot read: "), std::string::npos) << run.err();
  run.signal(SIGTERM);
  EXPECT_EQ(run.wait(20s), 143) << run.err();
  // A second run does not read the snapshot again: it goes on from the committed position.
  BackgroundProcess again({etl_host_binary(), "run", source_dir() + "/pipelines/cdc-replicate.json"}, environment);
  ASSERT_TRUE(again.wait_for_err("capturing publication")) << again.err();
  source_->query("SET ROLE etl; UPDATE items SET qty = 99 WHERE id = 1");
  EXPECT_TRUE(eventually([&] { return target.query("SELECT qty FROM items WHERE id = 1").at(0).at(0) == "99"; }, 30s)) << again.err();
  EXPECT_EQ(again.err().find("snapshot"), std::string::npos) << again.err();
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait(20s), 143) << again.err();
}

TEST_F(PostgresCdc, ReplicationKeepsUnsentToastValuesFollowsChangedKeysAndOrdersATruncate) {
  PostgresServer target;
  target.query("SET ROLE etl; " + read_file(source_dir() + "/pipelines/sql/cdc-demo.sql"));
  // name stored out of line, uncompressed: an update that does not change it does not send it.
  source_->query("SET ROLE etl; DROP TABLE items; " + read_file(source_dir() + "/pipelines/sql/cdc-demo.sql") +
                 "ALTER TABLE items ALTER name SET STORAGE EXTERNAL; "
                 "INSERT INTO items (id, name) SELECT g, repeat(chr(64 + g), 5000) FROM generate_series(1, 3) g");
  const auto rows = [](const PostgresServer& server) {
    return server.query("SELECT id, md5(name), length(name), qty FROM items ORDER BY id");
  };
  BackgroundProcess run({etl_host_binary(), "run", source_dir() + "/pipelines/cdc-replicate.json"},
                        shipped_pipeline_environment(target));
  ASSERT_TRUE(eventually([&] { return rows(target) == rows(*source_); }, 60s)) << run.err();  // the snapshot

  source_->query("SET ROLE etl; UPDATE items SET qty = 1 WHERE id = 1; "  // name not sent: kept as stored
                 "UPDATE items SET id = 11, qty = 2 WHERE id = 2; "          // a new key, name not sent
                 "UPDATE items SET id = 12, name = 'short' WHERE id = 3");   // a new key, every value sent
  const auto expected = std::vector<std::vector<std::string>>{
      {"1", target.query("SELECT md5(repeat('A', 5000))").at(0).at(0), "5000", "1"},
      {"11", target.query("SELECT md5(repeat('B', 5000))").at(0).at(0), "5000", "2"},
      {"12", target.query("SELECT md5('short')").at(0).at(0), "5", "0"}};
  ASSERT_EQ(rows(*source_), expected);
  EXPECT_TRUE(eventually([&] { return rows(target) == expected; }, 30s)) << run.err();

  // A truncate comes after every change before it, on whichever connection, and before the next.
  source_->query("SET ROLE etl; INSERT INTO items (id, name) SELECT g, 'x' FROM generate_series(20, 220) g; "
                 "TRUNCATE items; INSERT INTO items (id, name) VALUES (300, 'after')");
  EXPECT_TRUE(eventually([&] { return rows(target) == rows(*source_); }, 30s))
      << target.query("SELECT count(*) FROM items").at(0).at(0) << " rows in the target\n" << run.err();
  EXPECT_EQ(rows(target).size(), 1u);
  run.signal(SIGTERM);
  EXPECT_EQ(run.wait(20s), 143) << run.err();
  const std::string failures = read_file(dir_.file("cdc-replicate-failures.csv"));
  EXPECT_EQ(lines_of(failures).size(), 1u) << failures;
}

TEST_F(PostgresCdc, ASourceShutdownIsNotHeldUpByChangesTheTargetCannotTakeYet) {
  // A server shutting down waits for its logical clients to confirm all it sent; changes the
  // target cannot take yet cannot be confirmed, so the stream must leave for the server to stop.
  PostgresServer target;
  target.query("SET ROLE etl; " + read_file(source_dir() + "/pipelines/sql/cdc-demo.sql"));
  source_->query("SET ROLE etl; DROP TABLE items; " + read_file(source_dir() + "/pipelines/sql/cdc-demo.sql"));
  ProcessOptions environment = shipped_pipeline_environment(target);
  environment.set_env["CDC_SNAPSHOT"] = "never";
  const std::string file = source_dir() + "/pipelines/cdc-replicate.json";
  BackgroundProcess run({etl_host_binary(), "run", file}, environment);
  ASSERT_TRUE(run.wait_for_err("connected to PostgreSQL")) << run.err();
  target.stop();
  source_->query("SET ROLE etl; INSERT INTO items (id, name) SELECT g, 'held' FROM generate_series(1, 2000) g");
  ASSERT_TRUE(run.wait_for_err("rows wait for it")) << run.err();
  const auto stopping = std::chrono::steady_clock::now();
  source_->control("restart -m fast");
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 20s);
  EXPECT_TRUE(run.wait_for_err("is shutting down and waits for a confirmation", 10s)) << run.err();
  target.start();
  const auto rows = [](const PostgresServer& server) { return server.query("SELECT id, name, qty FROM items ORDER BY id"); };
  EXPECT_TRUE(eventually([&] { return rows(target) == rows(*source_); }, 60s)) << run.err();
  EXPECT_TRUE(run.running()) << run.err();
  run.signal(SIGTERM);
  EXPECT_EQ(run.wait(20s), 143) << run.err();
}

TEST_F(PostgresCdc, APublicationDroppedUnderAServiceEndsItNamingThePublication) {
  const std::string file = pipeline(cdc_config("never"), {{"plugin", "null"}}, "dropped");
  BackgroundProcess run({etl_host_binary(), "run", file});
  ASSERT_TRUE(run.wait_for_err("capturing publication")) << run.err();
  source_->query("SET ROLE etl; INSERT INTO items (id) VALUES (1)");
  ASSERT_TRUE(eventually([&] { return slot_confirmed_at_least(wal_position()); }, 20s)) << run.err();
  source_->query("DROP PUBLICATION changes; SET ROLE etl; INSERT INTO items (id) VALUES (2)");
  // A configuration that can never work again: the service ends, saying which publication.
  EXPECT_EQ(run.wait(30s), 5) << run.err();
  EXPECT_NE(run.err().find("publication \"changes\" does not exist"), std::string::npos) << run.err();
}

TEST_F(PostgresCdc, ConfigurationsThatCannotWorkAreRefusedSayingWhatToDo) {
  // wal_level replica: the ordinary test server.
  PostgresServer plain;
  json on_plain = plain.connection_config();
  on_plain.update({{"slot", "s"}, {"publication", "p"}, {"end", "caught_up"}});
  const auto not_logical = run_process({etl_host_binary(), "run", pipeline(on_plain, {{"plugin", "null"}}, "plain")});
  EXPECT_EQ(not_logical.exit_code, 5) << not_logical.err;
  EXPECT_NE(not_logical.err.find("wal_level is replica, and logical replication needs logical: ALTER SYSTEM SET wal_level = logical"),
            std::string::npos)
      << not_logical.err;

  // A table without a key.
  source_->query("SET ROLE etl; CREATE TABLE loose (a int, b text)");
  json loose = cdc_config("caught_up");
  loose["tables"] = {"loose"};
  loose["publication"] = "loose_changes";
  const auto keyless = run_process({etl_host_binary(), "run", pipeline(loose, {{"plugin", "null"}}, "loose")});
  EXPECT_EQ(keyless.exit_code, 5) << keyless.err;
  EXPECT_NE(keyless.err.find("table public.loose in publication \"loose_changes\" has no replica identity (no primary key)"),
            std::string::npos)
      << keyless.err;
  source_->query("DROP PUBLICATION loose_changes");

  // No settings.state: the slot would never be confirmed.
  json document = json::parse(read_file(pipeline(cdc_config("caught_up"), {{"plugin", "null"}}, "stateless")));
  document["settings"].erase("state");
  write_file(dir_.file("stateless.json"), document.dump());
  const auto stateless = run_process({etl_host_binary(), "run", dir_.file("stateless.json")});
  EXPECT_EQ(stateless.exit_code, 5) << stateless.err;
  EXPECT_NE(stateless.err.find("give the pipeline settings.state"), std::string::npos) << stateless.err;

  // A slot another client holds: a batch run gives up after its attempts, naming the holder.
  const std::string file = pipeline(cdc_config("caught_up"), {{"plugin", "null"}}, "first");
  ASSERT_EQ(run_process({etl_host_binary(), "run", file}).exit_code, 0);
  BackgroundProcess holder({source_->get("PG_BIN_DIR") + "/pg_recvlogical", "-h", source_->dir(), "-p", source_->get("DB_PORT"),
                            "-U", "postgres", "-d", "tokens", "-S", "etl_items", "--start", "-o", "proto_version=1", "-o",
                            "publication_names=changes", "-f", "/dev/null"},
                           ProcessOptions{});
  ASSERT_TRUE(eventually([&] {
    return source_->query("SELECT active FROM pg_replication_slots WHERE slot_name = 'etl_items'").at(0).at(0) == "t";
  })) << holder.err();
  json quick = cdc_config("caught_up");
  quick["retry"] = {{"attempts", 2}, {"initial_delay", 0.1}};
  const auto held = run_process({etl_host_binary(), "run", pipeline(quick, {{"plugin", "null"}}, "second")});
  EXPECT_EQ(held.exit_code, 5) << held.err;
  EXPECT_NE(held.err.find("55006"), std::string::npos) << held.err;
  EXPECT_NE(held.err.find("is active for PID"), std::string::npos) << held.err;
}

}  // namespace
}  // namespace etl::testing
