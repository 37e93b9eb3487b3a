#include "batch_transaction.hpp"

#include "postgres/copy_text.hpp"
#include "postgres/error_kind.hpp"
#include "postgres/transaction_ids.hpp"
#include "suspect_rows.hpp"

namespace etl::plugins::postgres {


bool BatchQueue::push(CopyBatch& batch) {
  std::unique_lock lock(mutex_);
  room_.wait(lock, [&] { return queued_.size() < capacity_ || aborted_; });
  if (aborted_ || closed_) return false;
  queued_.push_back(std::move(batch));
  ready_.notify_one();
  return true;
}

std::optional<CopyBatch> BatchQueue::pop() {
  std::unique_lock lock(mutex_);
  ready_.wait(lock, [&] { return !queued_.empty() || closed_ || aborted_; });
  if (aborted_ || queued_.empty()) return std::nullopt;
  CopyBatch batch = std::move(queued_.front());
  queued_.pop_front();
  room_.notify_one();
  return batch;
}

void BatchQueue::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  ready_.notify_all();
}

std::vector<CopyBatch> BatchQueue::abort() {
  std::lock_guard lock(mutex_);
  aborted_ = true;
  std::vector<CopyBatch> left(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
  queued_.clear();
  ready_.notify_all();
  room_.notify_all();
  return left;
}


std::uint64_t BatchTransaction::begin() {
  // Through a transaction pooler the session's staging table may be on another server
  // connection: it is made (if missing) in the transaction itself.
  const std::string stage = sql_.upsert && !session_.prepared() ? sql_.create_stage + "; " : std::string();
  const Script begun = run("BEGIN; " + stage + "SET CONSTRAINTS ALL IMMEDIATE; SELECT pg_current_xact_id()::text; SAVEPOINT etl_rows");
  if (begun.error) throw sdk::PluginError("PostgreSQL refused to begin a batch (" + begun.error->sqlstate + "): " + begun.error->message);
  const auto xid = parse_transaction_id(begun.value);
  if (!xid) throw sdk::PluginError("PostgreSQL gave no transaction id for a batch (\"" + begun.value + "\")");
  return *xid;
}

LoadResult BatchTransaction::load(std::span<const std::size_t> rows) {
  const std::vector<std::size_t> piece(rows.begin(), rows.end());
  RunResult run = load_run(std::span<const std::vector<std::size_t>>(&piece, 1));
  if (run.batch_error) return {std::move(run.batch_error), 0};
  if (run.done == 1) return {std::nullopt, piece.size()};
  return std::move(run.stopped);
}

RunResult BatchTransaction::load_run(std::span<const std::vector<std::size_t>> pieces) {
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

std::optional<StepError> BatchTransaction::apply(std::span<const std::size_t> rows) {
  return step(take_pending() + stage_upsert_statement(sql_.schema, sql_.table, sql_.columns, sql_.conflict_columns,
                                                      sql_.update_columns, sql_.guard, rows.front(), rows.back()));
}

EachResult BatchTransaction::load_each(std::span<const std::size_t> rows) {
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

std::optional<StepError> BatchTransaction::commit() {
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

void BatchTransaction::rollback() {
  pending_.clear();
  (void)run("ROLLBACK");
}

std::string BatchTransaction::take_pending() {
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

std::optional<StepError> BatchTransaction::step(const std::string& script) {
  Script done = run(script);
  pending_ = done.error ? kRollbackSavepoint : kNextSavepoint;
  return done.error;
}

BatchTransaction::Script BatchTransaction::run(const std::string& script, std::span<const std::vector<std::size_t>> pieces) {
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

void BatchTransaction::send_rows(std::span<const std::size_t> rows) {
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

}  // namespace etl::plugins::postgres
