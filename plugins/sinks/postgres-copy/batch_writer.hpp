#pragma once
// BatchWriter: the postgres-copy sink's work. Records are encoded for COPY into batches
// (batch_rows, batch_bytes); each batch is one transaction on one of several connections, the
// rows a statement refuses are found and taken out (isolate_rows), and every row gets exactly
// one outcome:
//   ok        once its batch's COMMIT succeeded (or, the answer lost, pg_xact_status of the
//             batch's transaction says committed and the server has not restarted since);
//   rejected  with the SQLSTATE and message of its own failure;
//   failed    when its batch could not be written, or its fate cannot be decided (commit
//             outcome unknown), or the run stopped before it was attempted.
// docs/guarantees.md states what holds.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iterator>
#include <memory>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "batch_isolation.hpp"
#include "batch_transaction.hpp"
#include "etl/sdk.hpp"
#include "postgres/connector.hpp"
#include "postgres/row_plan.hpp"
#include "postgres/session_queries.hpp"
#include "postgres/table_catalog.hpp"
#include "suspect_rows.hpp"

namespace etl::plugins::postgres {

/// What the sink hands the batch writer: how many connections, how large a batch, how hard to try.
struct BatchOptions {
  std::size_t connections = 4;
  std::size_t batch_rows = 4000;
  std::size_t batch_bytes = 4 << 20;
  sdk::RetryPolicy retry;
  long settle_timeout_ms = 10000;
  /// insert: guess which rows will be refused and try them alone (suspect_rows.hpp).
  bool guess_failures = true;
  /// A batch that is not full is sent this long after its first row came.
  std::chrono::milliseconds batch_wait{1000};
};

class BatchWriter {
 public:
  BatchWriter(const RowPlan& plan, ConnectTarget target, BatchOptions options, sdk::Context& context);

  ~BatchWriter();

  void open(sdk::OutcomeReceiver& outcomes);

  void write(std::span<const sdk::Record> records);

  void finish();

 private:
  /// Where a batch's transaction stands when its connection is lost.
  struct Lost {
    Backend backend;
    std::uint64_t xid = 0;
    bool commit_sent = false;
    std::vector<std::size_t> stored;  // the rows the transaction held at its commit
  };
  enum class Fate { committed, not_committed, unknown };

  /// Hands current_ to the queue (current_mutex_ held).
  void hand_over();

  /// The linger thread: sends a batch that is not full once it is batch_wait old, so that rows
  /// that come slowly (a followed source, a service) are not held until a batch fills.
  void send_late_batches();
  void stop_lingering();

  void fail_batch(CopyBatch& batch, const std::string& reason);

  /// Reads the table's definition for guessing which rows will be refused (suspect_rows.hpp)
  /// and gives every session the function that tries them alone. Without either, rows are
  /// loaded unguessed: slower with bad rows, as correct.
  void learn_table(std::vector<PgSession>& sessions);

  /// pg_temp.etl_insert_each on `session` (connection `index`); false (logged once) when refused.
  bool create_insert_each(PgSession& session, std::size_t index, bool log);

  /// The table and columns exist (checked once, at open), and upsert's staging table.
  void prepare(PgSession& session, bool check_table);

  void work(std::size_t index, PgSession session);

  void deliver(const CopyBatch& batch, std::vector<std::size_t>& open, const std::vector<std::size_t>& rows,
               const sdk::Outcome& outcome);

  static void remove(std::vector<std::size_t>& open, const std::vector<std::size_t>& rows);

  /// Writes one batch until every row of it has its outcome.
  void write_batch(std::size_t index, PgSession& session, CopyBatch& batch);

  void commit_done(const CopyBatch& batch, std::vector<std::size_t>& open, const std::vector<std::size_t>& stored);

  /// The fate of a batch whose connection was lost, asked over a new session.
  Fate decide(PgSession& session, const Lost& lost);

  const RowPlan& plan_;
  BatchOptions options_;
  sdk::Context& context_;
  Connector connector_;
  SinkState state_;
  BatchSql sql_;
  BatchQueue queue_;
  sdk::OutcomeReceiver* outcomes_ = nullptr;
  std::vector<std::thread> workers_;
  std::mutex current_mutex_;  // current_ and current_since_: write() and the linger thread
  std::condition_variable current_changed_;
  CopyBatch current_;
  std::chrono::steady_clock::time_point current_since_;  // when current_'s first row came
  bool linger_stop_ = false;
  std::thread linger_;
  std::atomic<std::uint64_t> committed_batches_{0};
  std::atomic<std::uint64_t> isolated_{0};
  std::atomic<std::uint64_t> extra_statements_{0};
  std::atomic<std::uint64_t> extra_exchanges_{0};
  std::atomic<std::uint64_t> reconnects_{0};
  std::atomic<std::uint64_t> rows_in_vain_{0};
  std::atomic<std::uint64_t> suspects_tried_{0};
  std::atomic<std::uint64_t> suspects_refused_{0};
  std::unique_ptr<SuspectRows> suspects_;   // null: no guessing (upsert, or nothing to guess from)
  std::string insert_each_sql_;
  std::vector<char> insert_each_ready_;     // per connection: its session has the function
};

}  // namespace etl::plugins::postgres
