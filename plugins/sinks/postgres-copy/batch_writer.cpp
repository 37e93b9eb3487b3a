#include "batch_writer.hpp"

#include <algorithm>
#include <iterator>

#include "postgres/error_kind.hpp"

namespace etl::plugins::postgres {


BatchWriter::BatchWriter(const RowPlan& plan, ConnectTarget target, BatchOptions options, sdk::Context& context)
      // One batch waits for a connection: with one per connection in progress and one being
      // filled, at most connections + 2 batches are held.
      : plan_(plan),
        options_(std::move(options)),
        context_(context),
        connector_(std::move(target), context, options_.retry),
        state_(context, connector_.target().where, "batch"),
        queue_(1),
        insert_each_ready_(options_.connections) {
  sql_.upsert = plan.mode() == WriteMode::upsert;
  sql_.schema = plan.schema();
  sql_.table = plan.table();
  sql_.columns = plan.columns();
  sql_.conflict_columns = plan.conflict_columns();
  sql_.update_columns = plan.update_columns();
  sql_.guard = plan.guard();
  sql_.copy = copy_statement(plan.schema(), plan.table(), plan.columns(), sql_.upsert);
  sql_.relation = sql_.upsert ? std::string(kStageTable) : plan.table();
  sql_.create_stage = create_stage_statement(plan.schema(), plan.table(), plan.columns());
}

BatchWriter::~BatchWriter() {
  (void)queue_.abort();
  stop_lingering();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
}

void BatchWriter::open(sdk::OutcomeReceiver& outcomes) {
  outcomes_ = &outcomes;
  // Every connection checks the table and columns (the same answer: a typo is one clear
  // error at the start, not a failed batch per worker).
  std::vector<PgSession> sessions =
      connector_.open_all(options_.connections, [this](PgSession& session) { prepare(session, true); });
  if (!sql_.upsert && options_.guess_failures) {
    if (connector_.target().mode->prepared()) {
      learn_table(sessions);
    } else {
      context_.log(sdk::LogLevel::info, "through a transaction pooler: no guessing of bad rows (it needs a function of "
                                        "the session's own); bad rows are found by COPY alone");
    }
  }
  context_.log(sdk::LogLevel::info,
               "connected to PostgreSQL " + std::to_string(PQserverVersion(sessions.front().get()) / 10000) + " at " +
                   connector_.target().where + " (COPY in batches, " + std::to_string(options_.connections) + " connection(s), " +
                   std::to_string(options_.batch_rows) + " rows or " + std::to_string(options_.batch_bytes >> 10) +
                   " KiB per batch, COPY" + (sql_.upsert ? " into a staging table, then INSERT ... ON CONFLICT" : "") +
                   ", TLS " + (PQsslInUse(sessions.front().get()) ? "on" : "off") + ")");
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    workers_.emplace_back([this, i, session = std::move(sessions[i])]() mutable { work(i, std::move(session)); });
  }
  linger_ = std::thread([this] { send_late_batches(); });
}

void BatchWriter::send_late_batches() {
  std::unique_lock lock(current_mutex_);
  while (!linger_stop_) {
    if (current_.size() == 0) {
      current_changed_.wait(lock);
      continue;
    }
    const auto due = current_since_ + options_.batch_wait;
    if (std::chrono::steady_clock::now() < due) {
      current_changed_.wait_until(lock, due);
      continue;
    }
    hand_over();
  }
}

void BatchWriter::stop_lingering() {
  {
    std::lock_guard lock(current_mutex_);
    linger_stop_ = true;
  }
  current_changed_.notify_all();
  if (linger_.joinable()) linger_.join();
}

void BatchWriter::write(std::span<const sdk::Record> records) {
  const bool guessing = suspects_ && suspects_->active();
  std::lock_guard lock(current_mutex_);
  bool started = false;  // a new batch: the linger thread is told when it began
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (state_.stopping()) {
      const std::string reason = "not attempted: " + state_.stop_reason();
      for (; i < records.size(); ++i) outcomes_->deliver(records[i].sequence, sdk::Outcome::failed(reason));
      fail_batch(current_, reason);
      if (state_.fatal()) throw sdk::PluginError("PostgreSQL at " + connector_.target().where + ": " + state_.stop_reason());
      return;
    }
    const std::optional<std::size_t> ordinal = sql_.upsert ? std::optional<std::size_t>(current_.size()) : std::nullopt;
    if (auto refusal = plan_.append_copy_line(records[i], current_.data, ordinal)) {
      outcomes_->deliver(records[i].sequence, std::move(*refusal));
      continue;
    }
    if (guessing) {
      const std::size_t from = current_.ends.empty() ? 0 : current_.ends.back();
      if (suspects_->suspect(std::string_view(current_.data).substr(from, current_.data.size() - from - 1))) {
        current_.suspects.push_back(current_.size());
      }
    }
    if (current_.sequences.empty()) {
      current_since_ = std::chrono::steady_clock::now();
      started = true;
    }
    current_.sequences.push_back(records[i].sequence);
    current_.ends.push_back(current_.data.size());
    if (current_.size() >= options_.batch_rows || current_.data.size() >= options_.batch_bytes) hand_over();
  }
  if (started) current_changed_.notify_all();
}

void BatchWriter::finish() {
  stop_lingering();
  if (current_.size() > 0) hand_over();
  queue_.close();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  for (auto& batch : queue_.abort()) fail_batch(batch, "not attempted: " + state_.stop_reason());
  context_.log(sdk::LogLevel::info,
               std::to_string(committed_batches_.load()) + " batch(es) committed; " + std::to_string(isolated_.load()) +
                   " row(s) taken out of their batch with " + std::to_string(extra_statements_.load()) +
                   " extra statement(s) in " + std::to_string(extra_exchanges_.load()) +
                   " extra exchange(s), loading " + std::to_string(rows_in_vain_.load()) + " row(s) in vain; " +
                   std::to_string(suspects_tried_.load()) + " suspected row(s) tried alone, " +
                   std::to_string(suspects_refused_.load()) + " of them refused; " +
                   std::to_string(reconnects_.load()) + " reconnect(s)");
  if (const std::string error = state_.first_error(); !error.empty()) {
    throw sdk::PluginError("PostgreSQL at " + connector_.target().where + ": " + error);
  }
}

void BatchWriter::hand_over() {
  CopyBatch batch = std::move(current_);
  current_ = CopyBatch{};
  current_.data.reserve(batch.data.capacity());
  if (!queue_.push(batch)) fail_batch(batch, "not attempted: " + state_.stop_reason());
}

void BatchWriter::fail_batch(CopyBatch& batch, const std::string& reason) {
  for (const auto sequence : batch.sequences) outcomes_->deliver(sequence, sdk::Outcome::failed(reason));
  batch = CopyBatch{};
}

void BatchWriter::learn_table(std::vector<PgSession>& sessions) {
  std::string error;
  std::optional<CatalogFacts> facts;
  try {
    facts = read_table_facts(sessions.front(), plan_.schema(), plan_.table(), plan_.columns(), error);
  } catch (const std::exception& e) {  // a connection lost meanwhile: the load finds out soon enough
    error = e.what();
  }
  if (!facts) {
    context_.log(sdk::LogLevel::warning, "cannot read the table's definition to guess which rows will fail (" + error +
                                             "); bad rows are found by COPY alone");
    return;
  }
  auto suspects = std::make_unique<SuspectRows>(facts->facts);
  if (!suspects->useful()) return;
  insert_each_sql_ = insert_each_function(plan_.schema(), plan_.table(), plan_.columns(), facts->sql_types);
  try {
    for (std::size_t i = 0; i < sessions.size(); ++i) {
      if (!create_insert_each(sessions[i], i, true)) return;
    }
  } catch (const std::exception& e) {
    context_.log(sdk::LogLevel::warning, std::string("cannot create the function that tries suspected rows alone (") +
                                             e.what() + "); bad rows are found by COPY alone");
    return;
  }
  suspects_ = std::move(suspects);
}

bool BatchWriter::create_insert_each(PgSession& session, std::size_t index, bool log) {
  if (insert_each_sql_.empty()) return false;
  PgResult created = session.execute(insert_each_sql_.c_str());
  const bool ok = PQresultStatus(created.get()) == PGRES_COMMAND_OK;
  insert_each_ready_[index] = ok;
  if (!ok && log) {
    context_.log(sdk::LogLevel::warning, "PostgreSQL at " + connector_.target().where + " refused the function that tries suspected rows alone (" +
                                             error_field(created.get(), PG_DIAG_SQLSTATE) + ": " +
                                             error_field(created.get(), PG_DIAG_MESSAGE_PRIMARY) + "); bad rows are found by COPY alone");
  }
  return ok;
}

void BatchWriter::prepare(PgSession& session, bool check_table) {
  if (check_table) {
    const std::string probe = "SELECT " + column_list(plan_.columns()) + " FROM " + qualified_table(plan_.schema(), plan_.table()) + " LIMIT 0";
    PgResult checked = session.execute(probe.c_str());
    if (PQresultStatus(checked.get()) != PGRES_TUPLES_OK) {
      throw sdk::PluginError("PostgreSQL at " + connector_.target().where + " refused the table (" +
                             error_field(checked.get(), PG_DIAG_SQLSTATE) + "): " +
                             error_field(checked.get(), PG_DIAG_MESSAGE_PRIMARY));
    }
  }
  // Through a transaction pooler the staging table is made in each batch's transaction instead.
  if (sql_.upsert && session.prepared()) {
    PgResult created = session.execute(sql_.create_stage.c_str());
    if (PQresultStatus(created.get()) != PGRES_COMMAND_OK) {
      throw sdk::PluginError("PostgreSQL at " + connector_.target().where + " refused the staging table (" +
                             error_field(created.get(), PG_DIAG_SQLSTATE) + "): " +
                             error_field(created.get(), PG_DIAG_MESSAGE_PRIMARY));
    }
  }
}

void BatchWriter::work(std::size_t index, PgSession session) {
  while (std::optional<CopyBatch> batch = queue_.pop()) {
    try {
      write_batch(index, session, *batch);
    } catch (const std::exception& e) {
      // Not expected (write_batch settles its rows itself): whatever is left is failed.
      state_.declare_fatal(e.what());
    }
  }
}

void BatchWriter::deliver(const CopyBatch& batch, std::vector<std::size_t>& open, const std::vector<std::size_t>& rows,
               const sdk::Outcome& outcome) {
  for (const auto row : rows) outcomes_->deliver(batch.sequences[row], outcome);
  remove(open, rows);
}

void BatchWriter::remove(std::vector<std::size_t>& open, const std::vector<std::size_t>& rows) {
  std::vector<std::size_t> kept;
  kept.reserve(open.size());
  std::set_difference(open.begin(), open.end(), rows.begin(), rows.end(), std::back_inserter(kept));
  open = std::move(kept);
}

void BatchWriter::write_batch(std::size_t index, PgSession& session, CopyBatch& batch) {
  std::vector<std::size_t> open(batch.size());  // rows without an outcome yet, ascending
  for (std::size_t i = 0; i < open.size(); ++i) open[i] = i;
  std::optional<Lost> lost;
  // Bounds: retry.attempts connection failures in a row (a service: none, but max_outage), and
  // retry.attempts tries of the batch after a deadlock or serialization failure.
  sdk::Backoff reconnects = connector_.backoff();
  sdk::Backoff retries(options_.retry, /*service=*/false);
  bool stop_attempt_made = false;
  auto give_up = [&](const std::string& reason) {
    if (lost && lost->commit_sent) {
      deliver(batch, open, lost->stored, sdk::Outcome::commit_unknown(reason));
    }
    std::vector<std::size_t> rest = open;
    deliver(batch, open, rest, sdk::Outcome::failed(reason));
  };
  while (!open.empty()) {
    if (state_.stopping() && !lost) {
      give_up("not attempted: " + state_.stop_reason());
      return;
    }
    try {
      if (!session) {
        const bool quick = state_.stopping();
        session = connector_.open_once(
            [this, index](PgSession& fresh) {
              prepare(fresh, false);
              if (suspects_) (void)create_insert_each(fresh, index, false);  // without it: one statement per suspect
            },
            quick);
        ++reconnects_;
      }
      if (lost) {
        const Fate fate = decide(session, *lost);
        if (fate == Fate::committed) {
          commit_done(batch, open, lost->stored);
          return;
        }
        if (fate == Fate::unknown) {
          give_up("the connection was lost after the batch's COMMIT was sent, and its transaction " +
                  std::to_string(lost->xid) + " could not be decided");
          return;
        }
        lost.reset();  // not committed: written again
        if (state_.stopping()) continue;
      }
      BatchTransaction transaction(session, batch, sql_, insert_each_ready_[index] != 0);
      Lost attempt;
      attempt.backend = session.backend();
      try {
        attempt.xid = transaction.begin();
        Isolation isolation = isolate_rows(transaction, open, sql_.upsert, batch.suspects);
        extra_statements_ += isolation.statements - 1;
        extra_exchanges_ += isolation.exchanges - 1;
        rows_in_vain_ += isolation.rows_in_vain;
        if (transaction.insert_each_missing()) {
          // The session lost its function (a pooler that resets sessions, a DISCARD): its
          // suspects go one statement each from now on, and this batch is written again.
          transaction.rollback();
          insert_each_ready_[index] = 0;
          context_.log(sdk::LogLevel::warning, "connection " + std::to_string(index + 1) +
                                                   ": the function that tries suspected rows alone is gone (" +
                                                   (isolation.batch_error ? isolation.batch_error->message : std::string()) +
                                                   "); its suspected rows go one statement each, the batch is written again");
          continue;
        }
        suspects_tried_ += isolation.suspects_tried;
        suspects_refused_ += isolation.suspects_refused;
        if (suspects_ && isolation.suspects_tried > 0 && suspects_->judge(isolation.suspects_tried, isolation.suspects_refused)) {
          context_.log(sdk::LogLevel::info, "stopped guessing which rows will fail: most suspected rows went in");
        }
        std::vector<std::size_t> settled;  // taken out of open at once: one pass, not one per row
        settled.reserve(isolation.rejected.size() + isolation.failed.size());
        for (const auto& [row, error] : isolation.rejected) {
          outcomes_->deliver(batch.sequences[row], sdk::Outcome::rejected(error.sqlstate, error.message));
          settled.push_back(row);
        }
        for (const auto& [row, error] : isolation.failed) {
          outcomes_->deliver(batch.sequences[row], sdk::Outcome::failed(error.message, error.sqlstate));
          settled.push_back(row);
        }
        std::sort(settled.begin(), settled.end());
        remove(open, settled);
        isolated_ += isolation.rejected.size() + isolation.failed.size();
        std::optional<StepError> error = std::move(isolation.batch_error);
        if (error) {
          transaction.rollback();
        } else {
          attempt.stored = std::move(isolation.stored);
          error = transaction.commit();
        }
        if (!error) {
          commit_done(batch, open, attempt.stored);
          return;
        }
        const ErrorKind kind = classify_sqlstate(error->sqlstate);
        std::optional<double> delay;
        if (kind == ErrorKind::retry_row) delay = retries.failed();
        if (delay) {
          context_.log(sdk::LogLevel::warning, "batch of " + std::to_string(batch.size()) + " rows: " + error->message +
                                                   " (" + error->sqlstate + "); trying again in " + sdk::seconds_text(*delay));
          if (sdk::sleep_unless_stopped(context_, *delay)) continue;
        }
        std::string reason = error->message + (kind == ErrorKind::retry_row ? " (gave up " + retries.spent_text() + ")" : "");
        if (kind == ErrorKind::fatal) state_.declare_fatal(error->sqlstate + ": " + error->message);
        for (const auto row : std::vector<std::size_t>(open)) {
          outcomes_->deliver(batch.sequences[row], sdk::Outcome::failed(reason, error->sqlstate));
        }
        open.clear();
        return;
      } catch (const ConnectionLost&) {
        attempt.commit_sent = transaction.commit_sent();
        lost = std::move(attempt);
        throw;
      }
    } catch (const ConnectionLost& e) {
      session = PgSession{};
      const auto delay = reconnects.failed();
      if (state_.stopping()) {
        if (lost && !stop_attempt_made) {
          stop_attempt_made = true;  // one quick try to decide the batch
          continue;
        }
        give_up(std::string(e.what()) + " (" + state_.stop_reason() + ")");
        return;
      }
      if (!delay) {
        const std::string reason = std::string(e.what()) + " (database unreachable " + reconnects.spent_text() + ")";
        state_.declare_fatal(reason);
        give_up(reason);
        return;
      }
      context_.log(sdk::LogLevel::warning, "connection " + std::to_string(index + 1) + " to PostgreSQL at " +
                                               connector_.target().where + ": " + e.what() + "; reconnecting in " +
                                               sdk::seconds_text(*delay) + " (" + reconnects.progress_text() +
                                               ", a batch of " + std::to_string(open.size()) + " row(s) to decide)");
      (void)sdk::sleep_unless_stopped(context_, *delay);
    } catch (const std::exception& e) {
      state_.record(e.what());
      give_up(e.what());
      return;
    }
  }
}

void BatchWriter::commit_done(const CopyBatch& batch, std::vector<std::size_t>& open, const std::vector<std::size_t>& stored) {
  deliver(batch, open, stored, sdk::Outcome::ok());
  ++committed_batches_;
  // Rows the transaction did not hold and that have no outcome: none should be left.
  for (const auto row : std::vector<std::size_t>(open)) {
    outcomes_->deliver(batch.sequences[row], sdk::Outcome::failed("internal: row left out of its batch"));
  }
  open.clear();
}

BatchWriter::Fate BatchWriter::decide(PgSession& session, const Lost& lost) {
  SessionQueries queries(session, plan_,
                         state_.stopping() ? std::min(options_.settle_timeout_ms, 2000L) : options_.settle_timeout_ms);
  // Its server process must be gone first: until then it may still commit (or hold locks
  // the batch's second try would wait on).
  const std::string unsettled = queries.settle(lost.backend);
  if (!lost.commit_sent) return Fate::not_committed;  // without a COMMIT nothing commits
  if (!unsettled.empty()) {
    context_.log(sdk::LogLevel::warning, "batch transaction " + std::to_string(lost.xid) + ": " + unsettled);
    return Fate::unknown;
  }
  const auto snapshot = queries.snapshot();
  const bool restarted = !snapshot || snapshot->server_started != lost.backend.server_started;
  const std::string xid = std::to_string(lost.xid);
  PgResult status = session.execute("SELECT pg_xact_status($1::xid8)", {xid.c_str()});
  std::string state;
  if (PQresultStatus(status.get()) == PGRES_TUPLES_OK && PQntuples(status.get()) == 1 && !PQgetisnull(status.get(), 0, 0)) {
    state = PQgetvalue(status.get(), 0, 0);
  } else if (error_field(status.get(), PG_DIAG_MESSAGE_PRIMARY).find("in the future") != std::string::npos) {
    // After a crash restart: the id never reached the WAL, which a commit would have.
    state = "future";
  }
  Fate fate = Fate::unknown;
  if (state == "committed") {
    // After a crash restart an id that never reached the WAL is handed out again: then
    // "committed" may speak of another transaction.
    fate = restarted ? Fate::unknown : Fate::committed;
  } else if (state == "aborted" || state == "future" || (state == "in progress" && restarted)) {
    // (in progress after a restart: the id was handed out again, so ours never reached the WAL)
    fate = Fate::not_committed;
  }
  context_.log(fate == Fate::unknown ? sdk::LogLevel::warning : sdk::LogLevel::info,
               "decided the batch of " + std::to_string(lost.stored.size()) + " row(s) on the lost connection (transaction " +
                   xid + ": " + (state.empty() ? std::string("status unknown") : state) +
                   (restarted ? ", server restarted since" : "") + "): " +
                   (fate == Fate::committed ? "committed" : fate == Fate::not_committed ? "not committed, written again" : "undecidable"));
  return fate;
}

}  // namespace etl::plugins::postgres
