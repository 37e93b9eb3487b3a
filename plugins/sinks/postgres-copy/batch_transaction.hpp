#pragma once
// commit: batch, the I/O of one batch: CopyBatch (rows encoded for COPY), BatchQueue (batches
// waiting for a connection) and BatchTransaction (the statements of one batch's transaction
// over a live session, as isolate_rows() asks for them). The writer that drives them is
// batch_writer.hpp.

#include <libpq-fe.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "batch_isolation.hpp"
#include "postgres/session.hpp"
#include "postgres/sql_text.hpp"

namespace etl::plugins::postgres {

/// Rows encoded for COPY (one line each, copy_text.hpp), with the records they came from.
struct CopyBatch {
  std::vector<std::uint64_t> sequences;
  std::vector<std::size_t> ends;  // ends[i]: offset just past row i's line in `data`
  std::string data;
  std::vector<std::size_t> suspects;  // rows likely to be refused (suspect_rows.hpp), ascending

  [[nodiscard]] std::size_t size() const { return sequences.size(); }
  [[nodiscard]] std::size_t begin_of(std::size_t row) const { return row == 0 ? 0 : ends[row - 1]; }
};

/// Batches waiting for a connection. Bounded: the source waits while the database is slower.
class BatchQueue {
 public:
  explicit BatchQueue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  /// Waits for room. False when the queue was aborted: the batch is the caller's to report.
  bool push(CopyBatch& batch);

  /// The next batch; waits for one. nullopt once closed and drained, or aborted.
  std::optional<CopyBatch> pop();

  /// No more batches will come; pop() drains the rest, then ends.
  void close();

  /// Nothing more is taken or handed out; returns the batches still queued.
  std::vector<CopyBatch> abort();

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable room_;
  std::deque<CopyBatch> queued_;
  std::size_t capacity_;
  bool closed_ = false;
  bool aborted_ = false;
};

/// The SQL of batch mode, from the plan.
struct BatchSql {
  bool upsert = false;
  std::string copy;      // COPY ... FROM STDIN (upsert: into the staging table)
  std::string relation;  // the name COPY's error context gives the relation it loads
  std::string create_stage;
  std::string schema, table;
  std::vector<std::string> columns, conflict_columns, update_columns;
  std::string guard;
};

/// One batch's transaction on a live session. Every statement after BEGIN runs inside the
/// savepoint etl_rows, so a failed one undoes only itself; the savepoint's release (after a
/// statement that went in) or rollback (after one that failed) travels with the next
/// statement. A run of loads is one query of several COPYs, each after a fresh savepoint: the
/// server goes from one to the next without waiting for the client, and at the first error it
/// skips the rest of the query (the order of the rows is kept). A lost connection throws
/// ConnectionLost; commit_sent() then says whether the fate of the transaction is in question.
class BatchTransaction final : public BatchSteps {
 public:
  /// `insert_each`: the session has pg_temp.etl_insert_each (load_each uses it).
  BatchTransaction(PgSession& session, const CopyBatch& batch, const BatchSql& sql, bool insert_each = false)
      : session_(session), batch_(batch), sql_(sql), insert_each_(insert_each) {}

  /// Begins the transaction and returns its id (pg_xact_status asks about it if the commit's
  /// answer is lost). Deferred constraints are checked per statement, where a bad row can
  /// still be found and taken out.
  std::uint64_t begin();

  LoadResult load(std::span<const std::size_t> rows) override;

  RunResult load_run(std::span<const std::vector<std::size_t>> pieces) override;

  std::optional<StepError> apply(std::span<const std::size_t> rows) override;

  /// One statement for all the rows: pg_temp.etl_insert_each tries each in a subtransaction
  /// and names those that failed. Inside the savepoint of the loads before it (a failure of the
  /// statement itself fails the batch, which rolls back everything anyway).
  EachResult load_each(std::span<const std::size_t> rows) override;

  /// Commits. An error (a serialization failure) is returned: the transaction is then gone.
  std::optional<StepError> commit();

  /// Rolls back; a connection that cannot even do that is left for the caller to drop.
  void rollback();

  [[nodiscard]] bool commit_sent() const { return commit_sent_; }
  /// load_each found the session without pg_temp.etl_insert_each: the batch is to be rolled
  /// back and written again without it.
  [[nodiscard]] bool insert_each_missing() const { return insert_each_missing_; }

 private:
  struct Script {
    std::optional<StepError> error;  // the first error a statement met
    std::string value;               // the first column of the last row-returning statement
    std::string tag;                 // the last statement's command tag
    std::size_t copies_whole = 0;    // COPYs, from the first, that took all their rows
    std::size_t copy_taken = 0;      // rows the COPY that failed or was cut short had been sent
    bool error_in_copy = false;      // `error` is a COPY's (else a statement's between them)
    bool copy_failed = false;        // a COPY was refused from here (CopyFail)
  };

  std::string take_pending();

  static constexpr std::string_view kNextSavepoint = "RELEASE SAVEPOINT etl_rows; SAVEPOINT etl_rows; ";
  static constexpr std::string_view kRollbackSavepoint = "ROLLBACK TO SAVEPOINT etl_rows; ";
  static constexpr const char* kRunStopped = "etl-host: the run of COPYs stopped at a piece cut short";

  /// A statement that is no COPY (upsert's apply), after the savepoint's release or rollback.
  std::optional<StepError> step(const std::string& script);

  /// Sends `script` (statements separated by semicolons; its COPYs get `pieces`, in order) and
  /// reads every result. A COPY after a piece that was cut short is refused from here
  /// (CopyFail), so that the query stops there as at an error and the rest of that piece goes
  /// before the pieces after it.
  Script run(const std::string& script, std::span<const std::vector<std::size_t>> pieces = {});

  /// The rows' lines as COPY data, straight from the batch's buffer in pieces of whole rows.
  /// Once the server has sent anything (an error: the COPY is lost, the rest would be sent in
  /// vain), the COPY is ended there; sent_ counts the rows sent, which is what a COPY that
  /// succeeds anyway took (it was a notice).
  void send_rows(std::span<const std::size_t> rows);

  PgSession& session_;
  const CopyBatch& batch_;
  const BatchSql& sql_;
  std::string pending_;
  bool insert_each_ = false;
  bool insert_each_missing_ = false;
  bool commit_sent_ = false;
  std::size_t sent_ = 0;  // rows of the current COPY sent
};

}  // namespace etl::plugins::postgres
