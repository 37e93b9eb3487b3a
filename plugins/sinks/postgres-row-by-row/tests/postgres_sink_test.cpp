// postgres-row-by-row against a real, throwaway PostgreSQL server (TLS on).

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>
#include <tuple>

#include "plugin_harness.hpp"
#include "test_support.hpp"

namespace etl::testing {
namespace {

using nlohmann::json;

class PostgresSink : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new PostgresServer(); }
  static void TearDownTestSuite() { delete server_; }
  void SetUp() override { server_->truncate_tokens(); }

  static json config(json overrides = json::object()) {
    json c = {{"host", server_->get("DB_HOST")}, {"port", std::stoi(server_->get("DB_PORT"))},
              {"user", server_->get("DB_USER")}, {"password", server_->get("DB_PASS")},
              {"dbname", server_->get("DB_NAME")}, {"table", "secret_tokens"},
              {"columns", {{"token", "data"}}},   {"connect_timeout", 5}};
    c.update(overrides);
    return c;
  }

  struct Written {
    std::map<std::uint64_t, sdk::Outcome> outcomes;
    std::size_t deliveries = 0;
    std::string error;
  };

  static Written write_all(const json& sink_config, const sdk::Batch& batch, std::size_t chunk = 100) {
    Written written;
    CollectingReceiver receiver;
    auto sink = create_plugin<sdk::Sink>(bundled_plugin("postgres-row-by-row"), sink_config);
    try {
      sink.object->open(receiver);
      for (std::size_t at = 0; at < batch.size(); at += chunk) {
        sink.object->write(std::span(batch).subspan(at, std::min(chunk, batch.size() - at)));
      }
      sink.object->finish();
    } catch (const std::exception& e) {
      written.error = e.what();
    }
    written.outcomes = receiver.outcomes();
    written.deliveries = receiver.deliveries();
    return written;
  }

  static std::string open_error(const json& sink_config) {
    return write_all(sink_config, records_with("token", {"abc"})).error;
  }

  static PostgresServer* server_;
};
PostgresServer* PostgresSink::server_ = nullptr;

std::vector<std::string> random_tokens(std::size_t count, unsigned seed) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::mt19937 random(seed);
  std::vector<std::string> tokens;
  for (std::size_t i = 0; i < count; ++i) {
    std::string token(22, 'A');
    for (auto& c : token) c = alphabet[random() % 64];
    tokens.push_back(token);
  }
  return tokens;
}

void expect_table_holds_exactly_the_ok_rows(const PostgresServer& server, const sdk::Batch& batch,
                                            const std::map<std::uint64_t, sdk::Outcome>& outcomes) {
  std::vector<std::string> expected;
  for (const auto& record : batch) {
    if (outcomes.at(record.sequence).status == sdk::Status::ok) expected.emplace_back(*record.text("token"));
  }
  auto in_table = server.tokens_in_table();
  std::sort(expected.begin(), expected.end());
  std::sort(in_table.begin(), in_table.end());
  EXPECT_EQ(in_table, expected);
}

TEST_F(PostgresSink, OkAndRejectedWithSqlstate) {
  const auto batch = records_with("token", {"good_token", "bad-token", "another_good"});
  for (const bool pipeline : {true, false}) {
    server_->truncate_tokens();
    const auto written = write_all(config({{"pipeline", pipeline}}), batch);
    ASSERT_EQ(written.error, "");
    ASSERT_EQ(written.outcomes.size(), 3u);
    EXPECT_EQ(written.outcomes.at(1).status, sdk::Status::ok);
    EXPECT_EQ(written.outcomes.at(2).status, sdk::Status::rejected);
    EXPECT_EQ(written.outcomes.at(2).code, "23514");
    EXPECT_NE(written.outcomes.at(2).message.find("secret_tokens_data_check"), std::string::npos);
    EXPECT_EQ(written.outcomes.at(3).status, sdk::Status::ok);
    auto in_table = server_->tokens_in_table();  // insertion order varies across connections
    std::sort(in_table.begin(), in_table.end());
    EXPECT_EQ(in_table, (std::vector<std::string>{"another_good", "good_token"}));
  }
}

TEST_F(PostgresSink, ManyRowsEachSettledOnceOverSeveralPipelinedConnections) {
  const auto tokens = random_tokens(3000, 7);
  const auto batch = records_with("token", tokens);
  const auto written = write_all(config({{"connections", 4}, {"max_in_flight", 64}}), batch, 333);
  ASSERT_EQ(written.error, "");
  EXPECT_EQ(written.deliveries, tokens.size());
  ASSERT_EQ(written.outcomes.size(), tokens.size());
  std::size_t rejected = 0;
  for (const auto& record : batch) {
    const auto& outcome = written.outcomes.at(record.sequence);
    const bool has_dash = record.text("token")->find('-') != std::string::npos;
    EXPECT_EQ(outcome.status, has_dash ? sdk::Status::rejected : sdk::Status::ok) << *record.text("token");
    rejected += has_dash;
  }
  EXPECT_GT(rejected, 0u);
  expect_table_holds_exactly_the_ok_rows(*server_, batch, written.outcomes);
}

TEST_F(PostgresSink, DuplicatesAreInsertedAndReportedPerOccurrence) {
  const auto batch = records_with("token", {"same_token", "same_token"});
  const auto written = write_all(config(), batch);
  ASSERT_EQ(written.outcomes.size(), 2u);
  EXPECT_EQ(server_->tokens_in_table().size(), 2u);
}

TEST_F(PostgresSink, BadBytesAreRejectedPerRowWithoutTouchingOthers) {
  const auto batch = records_with("token", {std::string("nul\0byte", 8), "bad\xff\xfeutf8", "fine_token"});
  const auto written = write_all(config(), batch);
  ASSERT_EQ(written.error, "");
  EXPECT_EQ(written.outcomes.at(1).status, sdk::Status::rejected);
  EXPECT_EQ(written.outcomes.at(1).code, "22021");
  EXPECT_EQ(written.outcomes.at(2).status, sdk::Status::rejected);
  EXPECT_EQ(written.outcomes.at(2).code, "22021");
  EXPECT_EQ(written.outcomes.at(3).status, sdk::Status::ok);
  EXPECT_EQ(server_->tokens_in_table(), std::vector<std::string>{"fine_token"});
}

TEST_F(PostgresSink, RecordWithoutTheMappedFieldIsRejected) {
  const auto written = write_all(config(), records_with("other", {"x"}));
  ASSERT_EQ(written.outcomes.size(), 1u);
  EXPECT_EQ(written.outcomes.at(1).status, sdk::Status::rejected);
  EXPECT_NE(written.outcomes.at(1).message.find("\"token\""), std::string::npos);
}

TEST_F(PostgresSink, HostileTableNameIsQuotedNotExecuted) {
  const auto error = open_error(config({{"table", "secret_tokens\"; DROP TABLE secret_tokens; --"}}));
  EXPECT_NE(error.find("42P01"), std::string::npos) << error;
  EXPECT_NE(error.find("does not exist"), std::string::npos) << error;
  EXPECT_EQ(server_->query("SELECT count(*) FROM secret_tokens").at(0).at(0), "0");
}

TEST_F(PostgresSink, WrongPasswordNamesTheServerButNotThePassword) {
  const auto error = open_error(config({{"password", "wrong-pass-9271"}}));
  EXPECT_NE(error.find(server_->get("DB_HOST") + ":" + server_->get("DB_PORT")), std::string::npos) << error;
  EXPECT_EQ(error.find("wrong-pass-9271"), std::string::npos) << error;
  EXPECT_EQ(error.find(server_->get("DB_PASS")), std::string::npos) << error;
}

TEST_F(PostgresSink, UnreachableServerNamesTheHost) {
  const auto error = open_error(config({{"port", 1}}));
  EXPECT_NE(error.find("127.0.0.1:1/"), std::string::npos) << error;
}

TEST_F(PostgresSink, PasswordWithQuotesSpacesAndEquals) {
  const std::string password = "it's a \"pass\" = word\\";
  std::string escaped;
  for (char c : password) escaped += c == '\'' ? std::string("''") : std::string(1, c);
  server_->query("DROP ROLE IF EXISTS tricky");
  server_->query("CREATE ROLE tricky LOGIN PASSWORD '" + escaped + "'");
  server_->query("GRANT INSERT ON secret_tokens TO tricky", "tokens");
  server_->query("GRANT USAGE ON SEQUENCE secret_tokens_id_seq TO tricky", "tokens");
  const auto written = write_all(config({{"user", "tricky"}, {"password", password}}), records_with("token", {"tricky_ok"}));
  EXPECT_EQ(written.error, "");
  EXPECT_EQ(server_->tokens_in_table(), std::vector<std::string>{"tricky_ok"});
}

TEST_F(PostgresSink, VerifyFullWithTheServersCertificate) {
  const auto ok = write_all(config({{"host", "localhost"}, {"sslmode", "verify-full"},
                                    {"sslrootcert", server_->get("DB_SSLROOTCERT")}}),
                            records_with("token", {"verified"}));
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(server_->tokens_in_table(), std::vector<std::string>{"verified"});
  TempDir elsewhere;
  const auto refused = open_error(config({{"sslmode", "verify-full"}, {"sslrootcert", elsewhere.file("missing.crt")}}));
  EXPECT_NE(refused.find("cannot connect"), std::string::npos) << refused;
}

TEST_F(PostgresSink, SslmodeRequireReallyUsesTls) {
  CollectingReceiver receiver;
  auto sink = create_plugin<sdk::Sink>(bundled_plugin("postgres-row-by-row"),
                                       config({{"application_name", "tls-check"}, {"connections", 2}}));
  sink.object->open(receiver);
  const auto rows = server_->query(
      "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tls-check'");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& row : rows) EXPECT_EQ(row.at(0), "t");
  sink.object->finish();
}

sdk::Batch customers(const std::vector<std::vector<std::string>>& rows) {
  sdk::Batch batch;
  for (const auto& row : rows) {
    sdk::Record record;
    record.set("id", row.at(0));
    if (row.size() > 1) record.set("name", row.at(1));
    if (row.size() > 2) record.set("updated", row.at(2));
    record.sequence = batch.size() + 1;
    batch.push_back(std::move(record));
  }
  return batch;
}

// A window far wider than the socket buffers, of rows larger than them together: with blocking
// sends this can deadlock (we block writing while the server blocks writing its answers to
// us); the window flushes while it reads, so every row is answered.
TEST_F(PostgresSink, AWideWindowOfLargeRowsIsFlushedWhileAnswersAreRead) {
  server_->query("DROP TABLE IF EXISTS wide_rows; CREATE TABLE wide_rows (data text); GRANT ALL ON wide_rows TO etl;");
  std::vector<std::string> values;
  for (int i = 0; i < 12000; ++i) values.push_back(std::to_string(i) + std::string(4000, 'x'));
  const auto written =
      write_all(config({{"table", "wide_rows"}, {"connections", 1}, {"max_in_flight", 10000}, {"answer_timeout", 20}}),
                records_with("token", values), 1000);
  ASSERT_EQ(written.error, "");
  ASSERT_EQ(written.outcomes.size(), values.size());
  for (const auto& [sequence, outcome] : written.outcomes) ASSERT_EQ(outcome.status, sdk::Status::ok) << outcome.message;
  EXPECT_EQ(server_->query("SELECT count(*) FROM wide_rows").at(0).at(0), "12000");
  server_->query("DROP TABLE wide_rows");
}

class PostgresSinkModes : public PostgresSink {
 protected:
  void SetUp() override {
    server_->query(
        "DROP TABLE IF EXISTS customers; CREATE TABLE customers (id int PRIMARY KEY, name text, updated int); "
        "INSERT INTO customers VALUES (1, 'a', 1), (2, 'b', 5); GRANT ALL ON customers TO etl;");
  }
  static json mode(json overrides) {
    json c = config({{"table", "customers"}, {"columns", {{"id", "id"}, {"name", "name"}, {"updated", "updated"}}}});
    c.update(overrides);
    return c;
  }
  static std::vector<std::vector<std::string>> table() {
    return server_->query("SELECT id::text, name, updated::text FROM customers ORDER BY customers.id");
  }
};

TEST_F(PostgresSinkModes, UpsertChangesRowsOnlyWhereTheGuardAllows) {
  const auto written = write_all(mode({{"mode", "upsert"}, {"conflict_columns", {"id"}},
                                       {"where", "EXCLUDED.updated > customers.updated"}}),
                                 customers({{"1", "A", "2"}, {"2", "B", "3"}, {"3", "c", "1"}}));
  ASSERT_EQ(written.error, "");
  EXPECT_EQ(written.outcomes.at(1).status, sdk::Status::ok);
  EXPECT_EQ(written.outcomes.at(1).code, "");
  EXPECT_EQ(written.outcomes.at(2).status, sdk::Status::ok);
  EXPECT_EQ(written.outcomes.at(2).code, "unchanged");  // the stored row is newer
  EXPECT_EQ(written.outcomes.at(3).status, sdk::Status::ok);
  EXPECT_EQ(table(), (std::vector<std::vector<std::string>>{{"1", "A", "2"}, {"2", "b", "5"}, {"3", "c", "1"}}));
  // Loading the same file again changes nothing and reports nothing as an error.
  const auto again = write_all(mode({{"mode", "upsert"}, {"conflict_columns", {"id"}}}),
                               customers({{"1", "A", "2"}, {"3", "c", "1"}}));
  for (const auto& [sequence, outcome] : again.outcomes) EXPECT_EQ(outcome.status, sdk::Status::ok);
  EXPECT_EQ(table().size(), 3u);
}

TEST_F(PostgresSinkModes, CastsDefaultsConstantsAndMissingFields) {
  server_->query(
      "DROP TABLE IF EXISTS people; CREATE TABLE people (id int PRIMARY KEY, name text NOT NULL, dob date, "
      "source text NOT NULL, seen timestamptz); GRANT ALL ON people TO etl;");
  // The casts make the parameters typed in the statement: "date" reads ISO text (and refuses
  // 2001-02-29 as the row's own error), "timestamptz" an ISO instant.
  json people = config({{"table", "people"},
                        {"columns", {{"id", "id"}, {"name", "name"}, {"dob", "dob"}, {"seen", "seen"}}},
                        {"casts", {{"dob", "date"}, {"seen", "timestamptz"}}},
                        {"defaults", {{"name", "(unnamed)"}}},
                        {"constants", {{"source", "crm"}}},
                        {"missing_field", "null"}});
  sdk::Batch batch;
  auto add = [&](std::initializer_list<std::pair<const char*, const char*>> fields) {
    sdk::Record record;
    for (const auto& [name, value] : fields) record.set(name, value);
    record.sequence = batch.size() + 1;
    batch.push_back(std::move(record));
  };
  add({{"id", "1"}, {"name", "Ann"}, {"dob", "2000-02-29"}, {"seen", "2026-12-01T10:00:00Z"}});
  add({{"id", "2"}});                                  // name from defaults, dob and seen NULL
  add({{"id", "3"}, {"name", "Bob"}, {"dob", "2001-02-29"}});  // not a date: rejected by the cast
  const auto written = write_all(people, batch);
  ASSERT_EQ(written.error, "");
  EXPECT_EQ(written.outcomes.at(1).status, sdk::Status::ok);
  EXPECT_EQ(written.outcomes.at(2).status, sdk::Status::ok);
  EXPECT_EQ(written.outcomes.at(3).status, sdk::Status::rejected);
  EXPECT_EQ(written.outcomes.at(3).code, "22008");
  EXPECT_EQ(server_->query("SELECT id::text, name, coalesce(dob::text, 'NULL'), source, coalesce(to_char(seen AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), 'NULL') "
                           "FROM people ORDER BY id"),
            (std::vector<std::vector<std::string>>{{"1", "Ann", "2000-02-29", "crm", "2026-12-01 10:00"},
                                                   {"2", "(unnamed)", "NULL", "crm", "NULL"}}));
  // The default policy rejects a record lacking a field, naming it.
  people.erase("missing_field");
  batch.clear();
  add({{"id", "4"}, {"name", "Cy"}});
  const auto strict = write_all(people, batch);
  EXPECT_EQ(strict.outcomes.at(1).code, "missing_field");
  EXPECT_NE(strict.outcomes.at(1).message.find("\"dob\""), std::string::npos) << strict.outcomes.at(1).message;
}

TEST_F(PostgresSinkModes, UpdateAndDeleteOfAMissingKeyAreRejectedNotFound) {
  const auto updated = write_all(mode({{"mode", "update"}, {"key_columns", {"id"}}}),
                                 customers({{"1", "renamed", "9"}, {"7", "nobody", "1"}}));
  ASSERT_EQ(updated.error, "");
  EXPECT_EQ(updated.outcomes.at(1).status, sdk::Status::ok);
  EXPECT_EQ(updated.outcomes.at(2).status, sdk::Status::rejected);
  EXPECT_EQ(updated.outcomes.at(2).code, "not_found");
  const auto deleted = write_all(config({{"table", "customers"}, {"columns", {{"id", "id"}}}, {"mode", "delete"},
                                         {"key_columns", {"id"}}}),
                                 customers({{"2"}, {"8"}}));
  EXPECT_EQ(deleted.outcomes.at(1).status, sdk::Status::ok);
  EXPECT_EQ(deleted.outcomes.at(2).code, "not_found");
  EXPECT_EQ(table(), (std::vector<std::vector<std::string>>{{"1", "renamed", "9"}}));
}

TEST_F(PostgresSinkModes, StatementsChosenByAFieldWithReturningInTheDetail) {
  json statement = config({{"mode", "statement"},
                           {"statement_field", "event"},
                           {"statements",
                            {{"created", "INSERT INTO customers (id, name, updated) VALUES ($id, $name, 0) RETURNING id, updated"},
                             {"renamed", "UPDATE customers SET name = $name WHERE id = $id"},
                             {"asked", "SELECT name, updated FROM customers WHERE id = $id"}}}});
  statement.erase("columns");
  statement.erase("table");
  sdk::Batch batch;
  for (const auto& [event, id, name] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"created", "10", "ten"}, {"renamed", "1", "one"}, {"renamed", "99", "x"}, {"asked", "2", ""},
           {"asked", "98", ""}, {"exploded", "1", ""}}) {
    sdk::Record record;
    record.set("event", event);
    record.set("id", id);
    record.set("name", name);
    record.sequence = batch.size() + 1;
    batch.push_back(std::move(record));
  }
  const auto written = write_all(statement, batch);
  ASSERT_EQ(written.error, "");
  const auto& created = written.outcomes.at(1);
  EXPECT_EQ(created.status, sdk::Status::ok);
  ASSERT_EQ(created.detail.size(), 2u);
  EXPECT_EQ(created.detail[0].name, "id");
  EXPECT_EQ(created.detail[0].value, sdk::Value(std::int64_t{10}));  // typed from the column
  EXPECT_EQ(written.outcomes.at(2).status, sdk::Status::ok);
  EXPECT_EQ(written.outcomes.at(3).code, "not_found");  // UPDATE 0
  ASSERT_EQ(written.outcomes.at(4).detail.size(), 2u);
  EXPECT_EQ(written.outcomes.at(4).detail[0].value, sdk::Value("b"));
  EXPECT_EQ(written.outcomes.at(5).code, "not_found");  // SELECT, no row
  EXPECT_EQ(written.outcomes.at(6).status, sdk::Status::rejected);
  EXPECT_EQ(written.outcomes.at(6).code, "unknown_statement");
  EXPECT_EQ(table(), (std::vector<std::vector<std::string>>{{"1", "one", "1"}, {"2", "b", "5"}, {"10", "ten", "0"}}));
}

TEST_F(PostgresSinkModes, ModeKeysMustNameMappedColumns) {
  for (const json& bad : {json{{"mode", "upsert"}}, json{{"mode", "upsert"}, {"conflict_columns", {"nope"}}},
                          json{{"mode", "update"}, {"key_columns", {"id", "name", "updated"}}},
                          json{{"mode", "insert"}, {"where", "true"}}}) {
    try {
      create_plugin<sdk::Sink>(bundled_plugin("postgres-row-by-row"), mode(bad));
      ADD_FAILURE() << "accepted: " << bad.dump();
    } catch (const sdk::ConfigError& e) {
      EXPECT_FALSE(e.path().empty()) << bad.dump();
    }
  }
}

TEST_F(PostgresSink, AnErrorAtCommitIsTheRowsOwnOutcome) {
  // A deferred unique constraint is checked at commit, that is at the row's sync point: the
  // duplicate is rejected with 23505, and no other row is taken for lost.
  server_->query(
      "DROP TABLE IF EXISTS deferred_tokens; "
      "CREATE TABLE deferred_tokens (data text UNIQUE DEFERRABLE INITIALLY DEFERRED); "
      "GRANT ALL ON deferred_tokens TO etl;");
  std::vector<std::string> values;
  for (int i = 0; i < 300; ++i) values.push_back("v" + std::to_string(i % 200));  // 100 duplicates
  const auto batch = records_with("token", values);
  const auto written = write_all(config({{"table", "deferred_tokens"}, {"connections", 4}}), batch);
  ASSERT_EQ(written.error, "");
  ASSERT_EQ(written.outcomes.size(), 300u);
  EXPECT_EQ(written.deliveries, 300u);
  std::size_t ok = 0, duplicate = 0;
  for (const auto& [sequence, outcome] : written.outcomes) {
    if (outcome.status == sdk::Status::ok) ++ok;
    if (outcome.status == sdk::Status::rejected && outcome.code == "23505") ++duplicate;
    EXPECT_EQ(outcome.message.find("not attempted"), std::string::npos) << outcome.message;
  }
  EXPECT_EQ(ok, 200u);
  EXPECT_EQ(duplicate, 100u);
  EXPECT_EQ(server_->query("SELECT count(DISTINCT data), count(*) FROM deferred_tokens").at(0),
            (std::vector<std::string>{"200", "200"}));
}

TEST_F(PostgresSink, ASerializationFailureAtCommitIsRetried) {
  // A deferred constraint trigger fails every other commit with 40001 (a sequence counts the
  // calls, outside any transaction): each failed row is sent again and then stored.
  server_->query(
      "DROP TABLE IF EXISTS flaky_tokens; DROP SEQUENCE IF EXISTS flaky_calls; CREATE SEQUENCE flaky_calls; "
      "CREATE TABLE flaky_tokens (data text); GRANT ALL ON flaky_tokens TO etl; GRANT USAGE ON flaky_calls TO etl; "
      "CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "IF nextval('flaky_calls') % 2 = 1 THEN RAISE EXCEPTION 'commit conflict' USING ERRCODE = '40001'; END IF; "
      "RETURN NULL; END $$; "
      "CREATE CONSTRAINT TRIGGER flaky_commit AFTER INSERT ON flaky_tokens DEFERRABLE INITIALLY DEFERRED "
      "FOR EACH ROW EXECUTE FUNCTION flaky();");
  const auto batch = records_with("token", {"a", "b", "c", "d", "e"});
  const auto written = write_all(config({{"table", "flaky_tokens"}, {"connections", 1}, {"max_in_flight", 1},
                                         {"retry", {{"attempts", 3}, {"initial_delay", 0.01}}}}),
                                 batch);
  ASSERT_EQ(written.error, "");
  ASSERT_EQ(written.outcomes.size(), 5u);
  for (const auto& [sequence, outcome] : written.outcomes) EXPECT_EQ(outcome.status, sdk::Status::ok) << outcome.message;
  EXPECT_EQ(server_->query("SELECT count(*) FROM flaky_tokens").at(0).at(0), "5");
  EXPECT_EQ(server_->query("SELECT last_value FROM flaky_calls").at(0).at(0), "10");
}

}  // namespace
}  // namespace etl::testing
