// The commit resolver over tables of server answers: what each row in flight on a lost
// connection becomes. No server: FakeQueries answers as a server would in each case.

#include <gtest/gtest.h>

#include <map>

#include "postgres/commit_resolver.hpp"

namespace etl::plugins::postgres {
namespace {

class FakeQueries final : public ResolverQueries {
 public:
  std::string unsettled;                  // settle's answer
  std::optional<Snapshot> now = Snapshot{1000, "boot-1"};
  std::map<std::uint64_t, std::string> status;  // xid -> pg_xact_status
  std::map<std::string, std::vector<std::uint64_t>> copies;  // first value -> xmins of stored copies
  std::set<std::string> incomparable;
  std::string lookup_refused;
  int fail_after = -1;  // throw (connection lost) on this question, counting from 0
  int asked = 0;
  std::vector<std::string> log;

  std::string settle(const Backend&) override { return question("settle"), unsettled; }
  std::optional<Snapshot> snapshot() override { return question("snapshot"), now; }
  std::string transaction_status(std::uint64_t xid) override {
    question("status " + std::to_string(xid));
    const auto found = status.find(xid);
    return found == status.end() ? "" : found->second;
  }
  std::string prepare_lookup() override { return question("prepare"), lookup_refused; }
  Lookup lookup(const Row& row) override {
    const std::string value = row.values.at(0).value_or("NULL");
    question("lookup " + value);
    Lookup out;
    if (incomparable.contains(value)) {
      out.kind = Lookup::Kind::incomparable;
    } else if (value == "broken") {
      out.kind = Lookup::Kind::failed;
      out.error = "permission denied";
    } else if (const auto found = copies.find(value); found != copies.end()) {
      out.xmins = found->second;
    }
    return out;
  }

 private:
  void question(const std::string& what) {
    log.push_back(what);
    if (asked++ == fail_after) throw std::runtime_error("connection lost while asking: " + what);
  }
};

SentRow sent(std::uint64_t sequence, const std::string& value, std::optional<std::uint64_t> xid = {}, std::uint64_t floor = 0) {
  SentRow out;
  out.row.sequence = sequence;
  out.row.values = {value};
  out.row.xid_floor = floor;
  out.xid = xid;
  return out;
}

Backend lost_backend(std::uint64_t floor = 900) { return Backend{4242, "start", floor, "boot-1"}; }

/// "ok", "again", or "unknown: <message>" per row, in in_flight order.
std::vector<std::string> verdicts(const Resolution& resolution, std::size_t rows) {
  std::vector<std::string> out(rows, "?");
  for (const auto& d : resolution.decided) {
    out[d.index] = d.outcome.status == sdk::Status::ok ? "ok" : "unknown: " + d.outcome.message;
  }
  for (const auto index : resolution.again) out[index] = "again";
  return out;
}

struct Case {
  const char* name;
  WriteMode mode;
  std::function<void(FakeQueries&)> server;
  std::vector<SentRow> in_flight;
  std::vector<std::string> expected;  // "unknown" matches any unknown
};

TEST(CommitResolver, CaseTable) {
  using V = std::vector<std::string>;
  const std::vector<Case> cases = {
      {"committed and aborted by transaction id", WriteMode::insert,
       [](FakeQueries& s) { s.status = {{950, "committed"}, {951, "aborted"}}; },
       {sent(1, "a", 950), sent(2, "b", 951)}, V{"ok", "again"}},
      {"an id the server cannot place is unknown", WriteMode::insert,
       [](FakeQueries& s) { s.status = {{950, "in progress"}}; }, {sent(1, "a", 950), sent(2, "b", 960)},
       V{"unknown", "unknown"}},
      {"no id: a copy stored after the process's floor is the row's", WriteMode::insert,
       [](FakeQueries& s) { s.copies = {{"a", {905}}, {"b", {850}}}; }, {sent(1, "a"), sent(2, "b")},
       V{"ok", "again"}},
      {"duplicate values: one stored copy answers for the first row only", WriteMode::insert,
       [](FakeQueries& s) { s.copies = {{"dup", {910}}}; }, {sent(1, "dup"), sent(2, "dup")}, V{"ok", "again"}},
      {"duplicate values: two copies, both rows stored", WriteMode::insert,
       [](FakeQueries& s) { s.copies = {{"dup", {910, 920}}}; }, {sent(1, "dup"), sent(2, "dup")}, V{"ok", "ok"}},
      {"a copy below the floor of an equal row decided before is not this row's", WriteMode::insert,
       [](FakeQueries& s) { s.copies = {{"a", {930}}}; }, {sent(1, "a", std::nullopt, 931)}, V{"again"}},
      {"an equal row's unknown commit makes the lookup untrustworthy", WriteMode::insert,
       [](FakeQueries& s) { s.copies = {{"a", {930}}}; }, {sent(1, "a", std::nullopt, kUntrustedFloor)}, V{"unknown"}},
      {"server restarted: ids are not trusted, lookups decide", WriteMode::insert,
       [](FakeQueries& s) {
         s.now = ResolverQueries::Snapshot{1000, "boot-2"};
         s.status = {{950, "committed"}};  // an id handed out again after the crash
         s.copies = {};
       },
       {sent(1, "a", 950)}, V{"again"}},
      {"xid wraparound: a 32-bit xmin is widened into the ceiling's epoch", WriteMode::insert,
       [](FakeQueries& s) {
         s.now = ResolverQueries::Snapshot{(std::uint64_t{3} << 32) + 100, "boot-1"};
         s.copies = {{"a", {50}}, {"b", {0xfffffff0ULL}}};
       },
       // b was sent first, before the 32-bit counter wrapped; a after it
       {sent(1, "b"), sent(2, "a")}, V{"ok", "ok"}},
      {"values that cannot even be compared cannot be stored: sent again", WriteMode::insert,
       [](FakeQueries& s) { s.incomparable = {"x"}; }, {sent(1, "x")}, V{"again"}},
      {"a failed lookup is unknown", WriteMode::insert, [](FakeQueries&) {}, {sent(1, "broken")}, V{"unknown"}},
      {"a refused lookup statement is unknown for rows without an id only", WriteMode::insert,
       [](FakeQueries& s) {
         s.lookup_refused = "looking it up failed: no such column";
         s.status = {{950, "committed"}};
       },
       {sent(1, "a", 950), sent(2, "b")}, V{"ok", "unknown"}},
      {"the old process cannot be ended: every row unknown", WriteMode::insert,
       [](FakeQueries& s) { s.unsettled = "server process 4242 still runs"; }, {sent(1, "a", 950), sent(2, "b")},
       V{"unknown", "unknown"}},
      {"commit-time error: the aborted transaction is sent again", WriteMode::insert,
       [](FakeQueries& s) { s.status = {{950, "aborted"}}; }, {sent(1, "a", 950)}, V{"again"}},
      {"upsert is replayed, whatever the server says", WriteMode::upsert,
       [](FakeQueries& s) { s.status = {{950, "committed"}}; }, {sent(1, "a", 950), sent(2, "b")}, V{"again", "again"}},
      {"delete is replayed", WriteMode::remove, [](FakeQueries&) {}, {sent(1, "a")}, V{"again"}},
      {"a statement not declared idempotent is unknown", WriteMode::statement, [](FakeQueries&) {}, {sent(1, "a")},
       V{"unknown"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    FakeQueries server;
    c.server(server);
    const Resolution resolution = resolve_lost_rows(ResolverPolicy{c.mode, false, true}, server, lost_backend(), c.in_flight);
    const auto got = verdicts(resolution, c.in_flight.size());
    ASSERT_EQ(got.size(), c.expected.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (c.expected[i] == "unknown") {
        EXPECT_EQ(got[i].substr(0, 8), "unknown:") << "row " << i;
      } else {
        EXPECT_EQ(got[i], c.expected[i]) << "row " << i;
      }
    }
    for (const auto& d : resolution.decided) {
      if (d.outcome.status != sdk::Status::ok) {
        EXPECT_EQ(d.outcome.code, sdk::kCommitUnknownCode);
      }
    }
    EXPECT_EQ(resolution.replay, c.mode != WriteMode::insert && c.mode != WriteMode::statement);
  }
}

TEST(CommitResolver, AnIdempotentStatementIsReplayed) {
  FakeQueries server;
  const auto resolution =
      resolve_lost_rows(ResolverPolicy{WriteMode::statement, true, true}, server, lost_backend(), std::vector{sent(1, "a")});
  EXPECT_EQ(resolution.again, (std::vector<std::size_t>{0}));
  EXPECT_TRUE(resolution.replay);
}

TEST(CommitResolver, LookupOffLeavesRowsWithoutAnIdUnknown) {
  FakeQueries server;
  server.copies = {{"a", {950}}};
  const auto resolution =
      resolve_lost_rows(ResolverPolicy{WriteMode::insert, false, false}, server, lost_backend(), std::vector{sent(1, "a")});
  ASSERT_EQ(resolution.decided.size(), 1u);
  EXPECT_NE(resolution.decided[0].outcome.message.find("lookup_unanswered is off"), std::string::npos);
}

TEST(CommitResolver, ACommittedRowReportsItsTransaction) {
  FakeQueries server;
  server.copies = {{"a", {905}}};
  server.status = {{960, "committed"}};
  const auto resolution = resolve_lost_rows(ResolverPolicy{}, server, lost_backend(), std::vector{sent(1, "a"), sent(2, "b", 960)});
  ASSERT_EQ(resolution.decided.size(), 2u);
  EXPECT_EQ(resolution.decided[0].xid, 905u);
  EXPECT_EQ(resolution.decided[1].xid, 960u);
}

TEST(CommitResolver, ResolutionInterruptedAtAnyQuestionDecidesNothing) {
  // The new connection is lost at each question in turn: the resolver throws, and since it
  // returns nothing, every row stays to be decided again on the next connection.
  const std::vector<SentRow> rows = {sent(1, "a", 950), sent(2, "b"), sent(3, "c")};
  FakeQueries full;
  full.status = {{950, "committed"}};
  full.copies = {{"b", {960}}};
  resolve_lost_rows(ResolverPolicy{}, full, lost_backend(), rows);
  const int questions = full.asked;
  ASSERT_GE(questions, 5);
  for (int at = 0; at < questions; ++at) {
    FakeQueries server;
    server.status = full.status;
    server.copies = full.copies;
    server.fail_after = at;
    EXPECT_THROW(resolve_lost_rows(ResolverPolicy{}, server, lost_backend(), rows), std::runtime_error) << "question " << at;
  }
  // Asked again in full, the answer is the same as if never interrupted.
  FakeQueries again;
  again.status = full.status;
  again.copies = full.copies;
  EXPECT_EQ(verdicts(resolve_lost_rows(ResolverPolicy{}, again, lost_backend(), rows), 3), (std::vector<std::string>{"ok", "ok", "again"}));
}

TEST(EqualRowFloors, RaisedByCommitsAndPoisonedByUnknownOutcomes) {
  auto floors = std::make_unique<EqualRowFloors>();
  EXPECT_EQ(floors->floor(7), 0u);
  floors->committed(7, 100);
  EXPECT_EQ(floors->floor(7), 101u);
  floors->committed(7, 50);  // an older commit decided later does not lower it
  EXPECT_EQ(floors->floor(7), 101u);
  floors->untrusted(7);
  floors->committed(7, 200);
  EXPECT_EQ(floors->floor(7), kUntrustedFloor);
  EXPECT_EQ(floors->floor(8), 0u);
}

}  // namespace
}  // namespace etl::plugins::postgres
