#include "postgres/session.hpp"

#include <poll.h>

#include <cerrno>
#include <cstring>

#include <Poco/Data/PostgreSQL/SessionHandle.h>
#include <Poco/Exception.h>

#include "etl/sdk/retry.hpp"
#include "postgres/error_kind.hpp"
#include "postgres/transaction_ids.hpp"
#include "postgres/values.hpp"

namespace etl::plugins::postgres {

bool shows_pooler(std::string_view sqlstate) { return sqlstate == "42P05" || sqlstate == "26000"; }

namespace {

/// Messages the server sends outside a statement: a FATAL one says it is ending the session
/// (an administrator, a shutdown, idle_session_timeout). Others (NOTICE from a trigger) are not
/// printed on stderr by libpq behind the host's logging.
void on_notice(void* ended, const PGresult* notice) {
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity != nullptr && (std::strcmp(severity, "FATAL") == 0 || std::strcmp(severity, "PANIC") == 0)) {
    static_cast<std::atomic<bool>*>(ended)->store(true);
  }
}

}  // namespace

PgSession::PgSession() = default;
PgSession::PgSession(PgSession&&) noexcept = default;
PgSession& PgSession::operator=(PgSession&&) noexcept = default;
PgSession::~PgSession() = default;

PgSession PgSession::open(const std::string& conninfo, const std::string& where, Deadlines deadlines,
                          std::shared_ptr<SessionMode> mode) {
  PgSession session;
  session.where_ = where;
  session.deadlines_ = std::move(deadlines);
  session.mode_ = std::move(mode);
  session.handle_ = std::make_unique<Poco::Data::PostgreSQL::SessionHandle>();
  try {
    session.handle_->connect(conninfo);
  } catch (const Poco::Exception& e) {
    const std::string reason = one_line(e.message().empty() ? e.displayText() : e.message());
    const std::string message = "cannot connect to PostgreSQL at " + where + ": " + reason;
    if (is_permanent_connect_failure(reason)) throw sdk::PluginError(message);
    throw ConnectionLost(message);
  }
  if (PQsetnonblocking(session.get(), 1) != 0) throw ConnectionLost("cannot make the connection non-blocking");
  PQsetNoticeReceiver(session.get(), on_notice, session.ended_.get());
  PgResult identity = session.execute(
      "SELECT pg_backend_pid()::text, backend_start::text, pg_snapshot_xmax(pg_current_snapshot())::text,"
      " pg_postmaster_start_time()::text FROM pg_stat_activity WHERE pid = pg_backend_pid()");
  if (PQresultStatus(identity.get()) != PGRES_TUPLES_OK || PQntuples(identity.get()) != 1) {
    throw sdk::PluginError("PostgreSQL at " + where + " did not say which server process serves the session (" +
                           error_field(identity.get(), PG_DIAG_MESSAGE_PRIMARY) + ")");
  }
  session.backend_.pid = std::stoi(PQgetvalue(identity.get(), 0, 0));
  session.backend_.started = PQgetvalue(identity.get(), 0, 1);
  session.backend_.floor = parse_transaction_id(PQgetvalue(identity.get(), 0, 2)).value_or(0);
  session.backend_.server_started = PQgetvalue(identity.get(), 0, 3);
  session.backend_.pooled = !session.prepared();
  return session;
}

PGconn* PgSession::get() const { return handle_ ? static_cast<PGconn*>(*handle_) : nullptr; }

std::string PgSession::error_message() const {
  std::string message = one_line(PQerrorMessage(get()));
  return message.empty() ? "connection lost" : message;
}

bool PgSession::still_open() {
  PGconn* connection = get();
  if (connection == nullptr || PQstatus(connection) != CONNECTION_OK || ended_->load()) return false;
  pollfd socket{PQsocket(connection), POLLIN, 0};
  if (poll(&socket, 1, 0) <= 0) return true;  // nothing said: still ours
  // An idle session hears from the server only to be told it is ended (57P01, a FATAL
  // error), followed by the end of the stream; a notice or a parameter change is harmless.
  if (PQconsumeInput(connection) != 1 || PQstatus(connection) != CONNECTION_OK || ended_->load()) return false;
  if ((socket.revents & (POLLHUP | POLLERR)) != 0) return false;
  while (PGnotify* notify = PQnotifies(connection)) PQfreemem(notify);
  return true;
}

PgResult PgSession::execute(const char* sql, const std::vector<const char*>& values) {
  return finish(PQsendQueryParams(get(), sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
}

PgResult PgSession::execute_prepared(const char* name, const std::vector<const char*>& values) {
  return finish(PQsendQueryPrepared(get(), name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
}

PgResult PgSession::prepare(const char* name, const std::string& sql, int parameters) {
  return finish(PQsendPrepare(get(), name, sql.c_str(), parameters, nullptr));
}

void PgSession::prepare(const Statement& statement, const std::string& what) {
  if (!prepared()) return;
  PgResult prepared = prepare(statement.name.c_str(), statement.sql, statement.parameters);
  if (PQresultStatus(prepared.get()) == PGRES_COMMAND_OK) return;
  const std::string sqlstate = error_field(prepared.get(), PG_DIAG_SQLSTATE);
  if (mode_ && shows_pooler(sqlstate)) {
    mode_->pooler_seen();
    return;
  }
  throw sdk::PluginError("PostgreSQL at " + where_ + " refused " + what + " (" + sqlstate + "): " +
                         error_field(prepared.get(), PG_DIAG_MESSAGE_PRIMARY) + " [" + statement.sql + "]");
}

PgResult PgSession::execute(const Statement& statement, const std::vector<const char*>& values) {
  if (prepared()) return execute_prepared(statement.name.c_str(), values);
  return execute(statement.sql.c_str(), values);
}

void PgSession::flush_some() {
  if (PQflush(get()) < 0) throw ConnectionLost(error_message());
}

void PgSession::await_result() {
  auto last_progress = Deadlines::Clock::now();
  while (true) {
    const int unsent = PQflush(get());
    if (unsent < 0) throw ConnectionLost(error_message());
    if (!PQisBusy(get())) return;
    wait_for_socket(unsent == 1, last_progress);
  }
}

bool PgSession::input_seen() {
  if (input_seen_) return true;
  pollfd socket{PQsocket(get()), POLLIN, 0};
  input_seen_ = poll(&socket, 1, 0) > 0 && (socket.revents & POLLIN) != 0;
  return input_seen_;
}

void PgSession::flush_all() {
  auto last_progress = Deadlines::Clock::now();
  while (true) {
    const int unsent = PQflush(get());
    if (unsent < 0) throw ConnectionLost(error_message());
    if (unsent == 0) return;
    wait_for_socket(true, last_progress);
  }
}

PgResult PgSession::next_result() {
  await_result();
  return PgResult(PQgetResult(get()));
}

ResultView PgSession::view(const PGresult* result, bool with_row) const {
  ResultView out;
  out.connection_bad = PQstatus(get()) == CONNECTION_BAD;
  if (result == nullptr) {
    out.message = error_message();
    return out;
  }
  switch (PQresultStatus(result)) {
    case PGRES_TUPLES_OK:
      out.kind = ResultView::Kind::rows;
      out.rows = PQntuples(result);
      if (out.rows > 0 && PQnfields(result) > 0 && !PQgetisnull(result, 0, 0)) out.first_value = PQgetvalue(result, 0, 0);
      if (with_row && out.rows > 0) {
        sdk::Record row;
        set_fields_from_row(result, 0, row);
        out.first_row = std::move(row.fields());
      }
      break;
    case PGRES_COMMAND_OK:
      out.kind = ResultView::Kind::command;
      out.touched = PQcmdTuples(const_cast<PGresult*>(result));
      break;
    case PGRES_PIPELINE_SYNC: out.kind = ResultView::Kind::sync; break;
    case PGRES_PIPELINE_ABORTED: out.kind = ResultView::Kind::pipeline_aborted; break;
    case PGRES_FATAL_ERROR:
    case PGRES_NONFATAL_ERROR: out.kind = ResultView::Kind::error; break;
    default: break;
  }
  out.sqlstate = error_field(result, PG_DIAG_SQLSTATE);
  out.message = one_line(error_field(result, PG_DIAG_MESSAGE_PRIMARY));
  if (out.kind != ResultView::Kind::rows && out.kind != ResultView::Kind::command && out.message.empty()) {
    out.message = error_message();
  }
  return out;
}

void PgSession::wait_for_socket(bool want_write, Deadlines::Clock::time_point& last_progress) {
  using Clock = Deadlines::Clock;
  PGconn* connection = get();
  const auto now = Clock::now();
  if (deadlines_.stop_requested && deadlines_.stop_requested()) {
    if (!deadlines_.stop_seen) deadlines_.stop_seen = now;
    if (now - *deadlines_.stop_seen >= deadlines_.stop_grace) {
      throw ConnectionLost("no answer within " + sdk::seconds_text(std::chrono::duration<double>(deadlines_.stop_grace).count()) +
                           " after the run was asked to stop");
    }
  }
  const long waited = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(now - last_progress).count());
  if (waited >= deadlines_.answer_timeout_ms) {
    throw ConnectionLost("no answer from the server for " + sdk::seconds_text(deadlines_.answer_timeout_ms / 1000.0) +
                         " (answer_timeout)");
  }
  pollfd socket{PQsocket(connection), static_cast<short>(POLLIN | (want_write ? POLLOUT : 0)), 0};
  const int ready = poll(&socket, 1, static_cast<int>(std::min<long>(100, deadlines_.answer_timeout_ms - waited)));
  if (ready < 0 && errno != EINTR) throw ConnectionLost(std::string("waiting for the server: ") + std::strerror(errno));
  if (ready <= 0) return;
  if ((socket.revents & (POLLIN | POLLERR | POLLHUP)) != 0) {
    input_seen_ = true;
    if (PQconsumeInput(connection) != 1) throw ConnectionLost(error_message());
  }
  last_progress = Clock::now();  // a byte came in, or the socket took more of ours
}

PgResult PgSession::finish(int sent) {
  if (sent != 1) throw ConnectionLost(error_message());
  PgResult first;
  while (PgResult result = next_result()) {
    if (!first) first = std::move(result);
  }
  const ExecStatusType status = first ? PQresultStatus(first.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    const ResultView failed = view(first.get(), false);
    if (!first || failed.connection_bad || classify_sqlstate(failed.sqlstate) == ErrorKind::connection) {
      throw ConnectionLost(failed.message);
    }
  }
  return first;
}

PipelineWindow::PipelineWindow(PgSession& session, bool with_rows) : session_(session), with_rows_(with_rows) {
  if (PQenterPipelineMode(session_.get()) != 1) throw ConnectionLost("cannot enter pipeline mode: " + session_.error_message());
}

PipelineWindow::~PipelineWindow() {
  if (session_ && PQpipelineStatus(session_.get()) != PQ_PIPELINE_OFF) PQexitPipelineMode(session_.get());
}

void PipelineWindow::send(const Statement& statement, const std::vector<const char*>& values) {
  PGconn* connection = session_.get();
  const int parameters = static_cast<int>(values.size());
  const int sent = session_.prepared()
                       ? PQsendQueryPrepared(connection, statement.name.c_str(), parameters, values.data(), nullptr, nullptr, 0)
                       : PQsendQueryParams(connection, statement.sql.c_str(), parameters, nullptr, values.data(), nullptr,
                                           nullptr, 0);
  if (sent != 1 || PQpipelineSync(connection) != 1) throw ConnectionLost(session_.error_message());
}

ResultView PipelineWindow::statement_result() {
  PgResult result = session_.next_result();
  if (!result) throw ConnectionLost(session_.error_message());
  return session_.view(result.get(), with_rows_);
}

std::optional<ResultView> PipelineWindow::commit() {
  std::optional<ResultView> error;
  for (int ends = 0;;) {
    PgResult next = session_.next_result();
    if (!next) {
      // The end of the statement's (or the commit error's) results; a connection that keeps
      // answering nothing is not one to wait on.
      if (++ends > 2) throw ConnectionLost("no commit answer: " + session_.error_message());
      continue;
    }
    const ResultView seen = session_.view(next.get(), false);
    if (seen.kind == ResultView::Kind::sync) return error;
    if (seen.kind == ResultView::Kind::error && !seen.connection_bad) {
      error = seen;
      continue;
    }
    throw ConnectionLost(seen.message.empty() ? "no commit answer: " + session_.error_message() : seen.message);
  }
}

}  // namespace etl::plugins::postgres
