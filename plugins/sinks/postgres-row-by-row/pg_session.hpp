#pragma once
// PgSession: one libpq connection (RAII), whose every wait has a deadline; and PipelineWindow:
// rows sent in pipeline mode, non-blocking, whose answers come back as events (ResultViews)
// for the caller to judge. Neither delivers outcomes: that is the sink's.
//
// Waiting: a blocking libpq read waits forever on a silently stalled network, and a blocking
// write can deadlock with a server blocked on writing its answers to us. So the socket is
// non-blocking, output is flushed while input is read, and answer_timeout without a byte in
// either direction is a lost connection; once the run is asked to stop, rows get stop_grace.

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <Poco/Data/PostgreSQL/SessionHandle.h>
#include <Poco/Exception.h>

#include "answers.hpp"
#include "commit_resolver.hpp"
#include "error_kind.hpp"
#include "etl/sdk.hpp"
#include "postgres/pg_connection.hpp"
#include "postgres/pg_values.hpp"
#include "transaction_ids.hpp"

namespace etl::plugins::postgres {

/// The connection is gone, or cannot be made right now: worth reconnecting.
class ConnectionLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline std::string seconds_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", value);
  return text;
}

/// How long a session waits.
struct Deadlines {
  using Clock = std::chrono::steady_clock;
  long answer_timeout_ms = 60000;
  std::function<bool()> stop_requested;  // may be empty
  std::chrono::milliseconds stop_grace{2000};
  /// When the stop request was first seen: rows in flight get stop_grace from then.
  std::optional<Clock::time_point> stop_seen;
};

class PgSession {
 public:
  PgSession() = default;

  /// Connects and learns the server process. Throws ConnectionLost when worth retrying,
  /// sdk::PluginError when not (authentication, a missing database, TLS refused, ...).
  static PgSession open(const std::string& conninfo, const std::string& where, Deadlines deadlines) {
    PgSession session;
    session.where_ = where;
    session.deadlines_ = std::move(deadlines);
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
    return session;
  }

  PGconn* get() const { return handle_ ? static_cast<PGconn*>(*handle_) : nullptr; }
  explicit operator bool() const { return handle_ != nullptr; }
  Backend& backend() { return backend_; }
  const Backend& backend() const { return backend_; }
  Deadlines& deadlines() { return deadlines_; }

  std::string error_message() const {
    std::string message = one_line(PQerrorMessage(get()));
    return message.empty() ? "connection lost" : message;
  }

  /// Runs one statement (outside pipeline mode) within the deadlines. Throws ConnectionLost
  /// when it failed because the connection went away; any other error is returned.
  PgResult execute(const char* sql, const std::vector<const char*>& values = {}) {
    return finish(PQsendQueryParams(get(), sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                                    nullptr, 0));
  }
  PgResult execute_prepared(const char* name, const std::vector<const char*>& values) {
    return finish(PQsendQueryPrepared(get(), name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
  }
  PgResult prepare(const char* name, const std::string& sql, int parameters) {
    return finish(PQsendPrepare(get(), name, sql.c_str(), parameters, nullptr));
  }

  /// Pushes buffered output to the socket as far as it takes it, without waiting.
  void flush_some() {
    if (PQflush(get()) < 0) throw ConnectionLost(error_message());
  }

  /// Waits until PQgetResult can return without blocking, flushing output meanwhile.
  void await_result() {
    auto last_progress = Deadlines::Clock::now();
    while (true) {
      const int unsent = PQflush(get());
      if (unsent < 0) throw ConnectionLost(error_message());
      if (!PQisBusy(get())) return;
      wait_for_socket(unsent == 1, last_progress);
    }
  }

  /// Whether the server sent anything since clear_input_seen() (checked between pieces of COPY
  /// data: the server answers a COPY only when it fails, or with a notice).
  bool input_seen() {
    if (input_seen_) return true;
    pollfd socket{PQsocket(get()), POLLIN, 0};
    input_seen_ = poll(&socket, 1, 0) > 0 && (socket.revents & POLLIN) != 0;
    return input_seen_;
  }
  void clear_input_seen() { input_seen_ = false; }

  /// Waits until everything queued for the server (COPY data) is on the socket, reading what
  /// the server sends meanwhile (it may block on writing us notices otherwise).
  void flush_all() {
    auto last_progress = Deadlines::Clock::now();
    while (true) {
      const int unsent = PQflush(get());
      if (unsent < 0) throw ConnectionLost(error_message());
      if (unsent == 0) return;
      wait_for_socket(true, last_progress);
    }
  }

  /// The next result, waited for within the deadlines; null at the end of a statement's results.
  PgResult next_result() {
    await_result();
    return PgResult(PQgetResult(get()));
  }

  /// What the sink reads from a result; `with_row` also copies its first row's fields.
  ResultView view(const PGresult* result, bool with_row) const {
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
      case PGRES_PIPELINE_SYNC:
        out.kind = ResultView::Kind::sync;
        break;
      case PGRES_PIPELINE_ABORTED:
        out.kind = ResultView::Kind::pipeline_aborted;
        break;
      case PGRES_FATAL_ERROR:
      case PGRES_NONFATAL_ERROR:
        out.kind = ResultView::Kind::error;
        break;
      default:
        break;
    }
    out.sqlstate = error_field(result, PG_DIAG_SQLSTATE);
    out.message = one_line(error_field(result, PG_DIAG_MESSAGE_PRIMARY));
    if (out.kind != ResultView::Kind::rows && out.kind != ResultView::Kind::command && out.message.empty()) {
      out.message = error_message();
    }
    return out;
  }

 private:
  /// One wait of at most 100 ms for the socket, within the deadlines: answer_timeout without a
  /// byte either way, or stop_grace once a stop was asked for, is a lost connection.
  void wait_for_socket(bool want_write, Deadlines::Clock::time_point& last_progress) {
    using Clock = Deadlines::Clock;
    PGconn* connection = get();
    const auto now = Clock::now();
    if (deadlines_.stop_requested && deadlines_.stop_requested()) {
      if (!deadlines_.stop_seen) deadlines_.stop_seen = now;
      if (now - *deadlines_.stop_seen >= deadlines_.stop_grace) {
        throw ConnectionLost("no answer within " +
                             seconds_text(std::chrono::duration<double>(deadlines_.stop_grace).count()) +
                             " after the run was asked to stop");
      }
    }
    const long waited =
        static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(now - last_progress).count());
    if (waited >= deadlines_.answer_timeout_ms) {
      throw ConnectionLost("no answer from the server for " + seconds_text(deadlines_.answer_timeout_ms / 1000.0) +
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

  PgResult finish(int sent) {
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

  std::unique_ptr<Poco::Data::PostgreSQL::SessionHandle> handle_;
  std::string where_;
  Deadlines deadlines_;
  Backend backend_;
  bool input_seen_ = false;  // see input_seen()
};

/// Rows in flight on one session in pipeline mode, each followed by a sync point, so each is
/// its own implicit transaction. The caller keeps the rows; the window only sends and reads.
class PipelineWindow {
 public:
  PipelineWindow(PgSession& session, bool with_rows) : session_(session), with_rows_(with_rows) {
    if (PQenterPipelineMode(session_.get()) != 1) {
      throw ConnectionLost("cannot enter pipeline mode: " + session_.error_message());
    }
  }
  ~PipelineWindow() {
    if (session_ && PQpipelineStatus(session_.get()) != PQ_PIPELINE_OFF) PQexitPipelineMode(session_.get());
  }
  PipelineWindow(const PipelineWindow&) = delete;
  PipelineWindow& operator=(const PipelineWindow&) = delete;

  /// Queues the prepared statement and its sync point; output goes out as the socket takes it.
  void send(const char* statement, const std::vector<const char*>& values) {
    PGconn* connection = session_.get();
    if (PQsendQueryPrepared(connection, statement, static_cast<int>(values.size()), values.data(), nullptr, nullptr,
                            0) != 1 ||
        PQpipelineSync(connection) != 1) {
      throw ConnectionLost(session_.error_message());
    }
  }

  void flush() { session_.flush_some(); }

  /// The oldest row's statement result (first event of its answers).
  ResultView statement_result() {
    PgResult result = session_.next_result();
    if (!result) throw ConnectionLost(session_.error_message());
    return session_.view(result.get(), with_rows_);
  }

  /// The oldest row's commit (second event): the error it met, or nullopt once its sync point
  /// came back clean.
  std::optional<ResultView> commit() {
    std::optional<ResultView> error;
    for (int ends = 0;;) {
      PgResult next = session_.next_result();
      if (!next) {
        // The end of the statement's (or the commit error's) results; a connection that
        // keeps answering nothing is not one to wait on.
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

 private:
  PgSession& session_;
  bool with_rows_;
};

}  // namespace etl::plugins::postgres
