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
#include "copy_text.hpp"
#include "pg_session.hpp"
#include "sql_text.hpp"
#include "suspect_rows.hpp"
#include "transaction_ids.hpp"

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
  bool push(CopyBatch& batch) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return queued_.size() < capacity_ || aborted_; });
    if (aborted_ || closed_) return false;
    queued_.push_back(std::move(batch));
    ready_.notify_one();
    return true;
  }

  /// The next batch; waits for one. nullopt once closed and drained, or aborted.
  std::optional<CopyBatch> pop() {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return !queued_.empty() || closed_ || aborted_; });
    if (aborted_ || queued_.empty()) return std::nullopt;
    CopyBatch batch = std::move(queued_.front());
    queued_.pop_front();
    room_.notify_one();
    return batch;
  }

  /// No more batches will come; pop() drains the rest, then ends.
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    ready_.notify_all();
  }

  /// Nothing more is taken or handed out; returns the batches still queued.
  std::vector<CopyBatch> abort() {
    std::lock_guard lock(mutex_);
    aborted_ = true;
    std::vector<CopyBatch> left(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
    queued_.clear();
    ready_.notify_all();
    room_.notify_all();
    return left;
  }

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
  std::uint64_t begin() {
    const Script begun = run("BEGIN; SET CONSTRAINTS ALL IMMEDIATE; SELECT pg_current_xact_id()::text; SAVEPOINT etl_rows");
    if (begun.error) throw sdk::PluginError("PostgreSQL refused to begin a batch (" + begun.error->sqlstate + "): " + begun.error->message);
    const auto xid = parse_transaction_id(begun.value);
    if (!xid) throw sdk::PluginError("PostgreSQL gave no transaction id for a batch (\"" + begun.value + "\")");
    return *xid;
  }

  LoadResult load(std::span<const std::size_t> rows) override {
    const std::vector<std::size_t> piece(rows.begin(), rows.end());
    RunResult run = load_run(std::span<const std::vector<std::size_t>>(&piece, 1));
    if (run.batch_error) return {std::move(run.batch_error), 0};
    if (run.done == 1) return {std::nullopt, piece.size()};
    return std::move(run.stopped);
  }

  RunResult load_run(std::span<const std::vector<std::size_t>> pieces) override {
    std::string script = take_pending();
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (i != 0) script += "; " + std::string(kNextSavepoint);
      script += sql_.copy;
    }
    Script done = run(script, pieces);
    pending_ = done.error || done.copy_failed ? std::string(kRollbackSavepoint) : std::string(kNextSavepoint);
    RunResult out;
    out.done = done.copies_whole;
    if (done.error && !done.error_in_copy) {
      out.batch_error = std::move(done.error);
    } else if (out.done < pieces.size()) {
      out.stopped = LoadResult{std::move(done.error), done.copy_taken};
    }
    return out;
  }

  std::optional<StepError> apply(std::span<const std::size_t> rows) override {
    return step(take_pending() + stage_upsert_statement(sql_.schema, sql_.table, sql_.columns, sql_.conflict_columns,
                                                        sql_.update_columns, sql_.guard, rows.front(), rows.back()));
  }

  /// One statement for all the rows: pg_temp.etl_insert_each tries each in a subtransaction
  /// and names those that failed. Inside the savepoint of the loads before it (a failure of the
  /// statement itself fails the batch, which rolls back everything anyway).
  EachResult load_each(std::span<const std::size_t> rows) override {
    if (!insert_each_) return BatchSteps::load_each(rows);
    EachResult out;
    if (pending_.starts_with("ROLLBACK")) {  // the last load failed: its rollback first
      Script rolled_back = run(take_pending());
      if (rolled_back.error) {
        out.batch_error = std::move(rolled_back.error);
        return out;
      }
      pending_ = kNextSavepoint;
    }
    std::string literal = "{";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (i != 0) literal += ',';
      const std::size_t from = batch_.begin_of(rows[i]);
      append_array_row(literal, std::string_view(batch_.data).substr(from, batch_.ends[rows[i]] - from - 1));
    }
    literal += '}';
    PgResult result = session_.execute(kInsertEachCall, {literal.c_str()});
    if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) {
      const ResultView seen = session_.view(result.get(), false);
      if (seen.connection_bad || classify_sqlstate(seen.sqlstate) == ErrorKind::connection) {
        throw ConnectionLost(seen.message.empty() ? session_.error_message() : seen.message);
      }
      pending_ = kRollbackSavepoint;
      insert_each_missing_ = seen.sqlstate == "42883";  // undefined_function
      out.batch_error = StepError{seen.sqlstate, seen.message, {}};
      return out;
    }
    out.errors.resize(rows.size());
    for (int i = 0; i < PQntuples(result.get()); ++i) {
      const long row = std::strtol(PQgetvalue(result.get(), i, 0), nullptr, 10);
      if (row < 1 || static_cast<std::size_t>(row) > rows.size()) continue;
      out.errors[static_cast<std::size_t>(row - 1)] = StepError{PQgetvalue(result.get(), i, 1), PQgetvalue(result.get(), i, 2), {}};
    }
    return out;
  }

  /// Commits. An error (a serialization failure) is returned: the transaction is then gone.
  std::optional<StepError> commit() {
    // A failed last statement's rollback must come first: COMMIT in an aborted transaction
    // rolls it all back (and says so only in its command tag, checked below).
    std::string script = pending_.starts_with("ROLLBACK") ? pending_ : std::string();
    pending_.clear();
    commit_sent_ = true;
    Script committed = run(script + "COMMIT");
    if (!committed.error && committed.tag != "COMMIT") {
      committed.error = StepError{"40000", "the batch's transaction was rolled back at its commit (" + committed.tag + ")", {}};
    }
    return committed.error;
  }

  /// Rolls back; a connection that cannot even do that is left for the caller to drop.
  void rollback() {
    pending_.clear();
    (void)run("ROLLBACK");
  }

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

  std::string take_pending() {
    std::string out = std::move(pending_);
    pending_.clear();
    return out;
  }

  static constexpr std::string_view kNextSavepoint = "RELEASE SAVEPOINT etl_rows; SAVEPOINT etl_rows; ";
  static constexpr std::string_view kRollbackSavepoint = "ROLLBACK TO SAVEPOINT etl_rows; ";
  static constexpr const char* kRunStopped = "etl-host: the run of COPYs stopped at a piece cut short";

  /// A statement that is no COPY (upsert's apply), after the savepoint's release or rollback.
  std::optional<StepError> step(const std::string& script) {
    Script done = run(script);
    pending_ = done.error ? kRollbackSavepoint : kNextSavepoint;
    return done.error;
  }

  /// Sends `script` (statements separated by semicolons; its COPYs get `pieces`, in order) and
  /// reads every result. A COPY after a piece that was cut short is refused from here
  /// (CopyFail), so that the query stops there as at an error and the rest of that piece goes
  /// before the pieces after it.
  Script run(const std::string& script, std::span<const std::vector<std::size_t>> pieces = {}) {
    PGconn* connection = session_.get();
    if (PQsendQuery(connection, script.c_str()) != 1) throw ConnectionLost(session_.error_message());
    Script out;
    std::size_t copies = 0;    // COPYs the server has asked data for
    bool in_copy = false;      // the last of them has not answered yet
    bool refusing = false;     // a piece was cut short: the COPYs after it are refused
    while (PgResult result = session_.next_result()) {
      switch (PQresultStatus(result.get())) {
        case PGRES_COPY_IN:
          ++copies;
          in_copy = true;
          if (refusing || copies > pieces.size()) {
            out.copy_failed = true;
            if (PQputCopyEnd(connection, kRunStopped) != 1) throw ConnectionLost(session_.error_message());
            session_.flush_all();
          } else {
            const auto& piece = pieces[copies - 1];
            send_rows(piece);
            if (sent_ < piece.size()) {
              refusing = true;  // this piece may still succeed, but its rest must go first
              out.copy_taken = sent_;
            }
          }
          break;
        case PGRES_TUPLES_OK:
          if (PQntuples(result.get()) > 0 && PQnfields(result.get()) > 0) out.value = PQgetvalue(result.get(), 0, 0);
          out.tag = PQcmdStatus(result.get());
          break;
        case PGRES_COMMAND_OK:
          out.tag = PQcmdStatus(result.get());
          if (in_copy) {
            in_copy = false;
            if (!refusing) ++out.copies_whole;
          }
          break;
        default: {
          const ResultView seen = session_.view(result.get(), false);
          if (seen.connection_bad || seen.kind != ResultView::Kind::error || classify_sqlstate(seen.sqlstate) == ErrorKind::connection) {
            throw ConnectionLost(seen.message.empty() ? session_.error_message() : seen.message);
          }
          const bool refused_here = in_copy && out.copy_failed;
          if (!out.error && !refused_here) {
            out.error_in_copy = in_copy;
            if (in_copy) out.copy_taken = sent_;
            out.error = StepError{seen.sqlstate, seen.message,
                                  copy_error_line(error_field(result.get(), PG_DIAG_CONTEXT), sql_.relation)};
          }
          in_copy = false;
        }
      }
    }
    if (PQstatus(connection) == CONNECTION_BAD) throw ConnectionLost(session_.error_message());
    return out;
  }

  /// The rows' lines as COPY data, straight from the batch's buffer in pieces of whole rows.
  /// Once the server has sent anything (an error: the COPY is lost, the rest would be sent in
  /// vain), the COPY is ended there; sent_ counts the rows sent, which is what a COPY that
  /// succeeds anyway took (it was a notice).
  void send_rows(std::span<const std::size_t> rows) {
    constexpr std::size_t kPiece = 64 * 1024;
    PGconn* connection = session_.get();
    session_.clear_input_seen();
    sent_ = 0;
    std::size_t i = 0;
    while (i < rows.size() && (i == 0 || !session_.input_seen())) {
      // A piece: consecutive rows (one run of the buffer) up to kPiece bytes, at least one row.
      const std::size_t from = batch_.begin_of(rows[i]);
      std::size_t j = i + 1;
      while (j < rows.size() && rows[j] == rows[j - 1] + 1 && batch_.ends[rows[j]] - from <= kPiece) ++j;
      const std::size_t size = batch_.ends[rows[j - 1]] - from;
      if (PQputCopyData(connection, batch_.data.data() + from, static_cast<int>(size)) != 1) {
        throw ConnectionLost(session_.error_message());
      }
      sent_ += j - i;
      i = j;
      // The last piece goes with the COPY's end: one write, and one wake-up of the server, less
      // per statement (most pieces after a bad row are a single one).
      if (i < rows.size()) session_.flush_all();
    }
    if (PQputCopyEnd(connection, nullptr) != 1) throw ConnectionLost(session_.error_message());
    session_.flush_all();
  }

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
