#pragma once
// PgSession: one libpq connection (RAII), whose every wait has a deadline; and PipelineWindow:
// rows sent in pipeline mode, non-blocking, whose answers come back as events (ResultViews)
// for the caller to judge. Neither delivers outcomes: that is the sinks'.
//
// Waiting: a blocking libpq read waits forever on a silently stalled network, and a blocking
// write can deadlock with a server blocked on writing its answers to us. So the socket is
// non-blocking, output is flushed while input is read, and answer_timeout without a byte in
// either direction is a lost connection; once the run is asked to stop, rows get stop_grace.
//
// Statements: a session sends its statements by name once they are prepared, or as text each
// time when named statements cannot be kept (through a transaction pooler, which moves
// transactions between server connections). SessionMode says which, shared by every session of
// one plugin, and turns to text for good the first time the server shows a pooler (a name that
// is already there, or missing, when this session prepared or never prepared it).

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "postgres/answers.hpp"
#include "postgres/backend.hpp"
#include "postgres/connection.hpp"

namespace Poco::Data::PostgreSQL {
class SessionHandle;
}

namespace etl::plugins::postgres {

/// The connection is gone, or cannot be made right now: worth reconnecting.
class ConnectionLost : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// How long a session waits.
struct Deadlines {
  using Clock = std::chrono::steady_clock;
  long answer_timeout_ms = 60000;
  std::function<bool()> stop_requested;  // may be empty
  std::chrono::milliseconds stop_grace{2000};
  /// When the stop request was first seen: rows in flight get stop_grace from then.
  std::optional<Clock::time_point> stop_seen;
};

/// Whether the sessions of one plugin use named prepared statements. Shared by its sessions:
/// a pooler seen by one is there for all.
class SessionMode {
 public:
  explicit SessionMode(bool prepared) : prepared_(prepared), configured_(prepared) {}
  [[nodiscard]] bool prepared() const noexcept { return prepared_.load(std::memory_order_relaxed); }
  /// False when named statements were off from the start (prepared_statements: false).
  [[nodiscard]] bool configured() const noexcept { return configured_; }
  /// Turns named statements off; true the first time (to log it once).
  bool pooler_seen() noexcept { return prepared_.exchange(false); }

 private:
  std::atomic<bool> prepared_;
  bool configured_;
};

/// A statement the plugin sends many times: by name when the session prepared it, else as text.
struct Statement {
  std::string name;
  std::string sql;
  int parameters = 0;
};

/// SQLSTATEs that show a transaction pooler between us and the server: a name this session
/// never prepared is there (42P05), or one it prepared is not (26000).
bool shows_pooler(std::string_view sqlstate);

class PgSession {
 public:
  PgSession();
  PgSession(PgSession&&) noexcept;
  PgSession& operator=(PgSession&&) noexcept;
  ~PgSession();

  /// Connects and learns the server process. Throws ConnectionLost when worth retrying,
  /// sdk::PluginError when not (authentication, a missing database, TLS refused, ...).
  /// `mode` may be null (named statements, no pooler expected).
  static PgSession open(const std::string& conninfo, const std::string& where, Deadlines deadlines,
                        std::shared_ptr<SessionMode> mode = nullptr);

  PGconn* get() const;
  explicit operator bool() const { return get() != nullptr; }
  Backend& backend() { return backend_; }
  const Backend& backend() const { return backend_; }
  Deadlines& deadlines() { return deadlines_; }
  /// Named statements in use (see SessionMode).
  [[nodiscard]] bool prepared() const { return !mode_ || mode_->prepared(); }
  [[nodiscard]] const std::shared_ptr<SessionMode>& mode() const { return mode_; }

  std::string error_message() const;

  /// Whether a session that has been idle can still be used: a server that ended it (a
  /// restart, pg_terminate_backend, idle_session_timeout) has said so on the socket, which is
  /// read here without waiting. A session found closed is to be replaced before anything is
  /// sent on it, so that nothing is sent to a server process that is gone.
  bool still_open();

  /// Runs one statement (outside pipeline mode) within the deadlines. Throws ConnectionLost
  /// when it failed because the connection went away; any other error is returned.
  PgResult execute(const char* sql, const std::vector<const char*>& values = {});
  PgResult execute_prepared(const char* name, const std::vector<const char*>& values);
  PgResult prepare(const char* name, const std::string& sql, int parameters);
  /// Prepares `statement` when the session uses named statements (a pooler seen then turns
  /// them off, see SessionMode); throws sdk::PluginError when the server refuses its text.
  void prepare(const Statement& statement, const std::string& what);
  /// Runs `statement` by name or as text.
  PgResult execute(const Statement& statement, const std::vector<const char*>& values);

  /// Pushes buffered output to the socket as far as it takes it, without waiting.
  void flush_some();
  /// Waits until PQgetResult can return without blocking, flushing output meanwhile.
  void await_result();
  /// Whether the server sent anything since clear_input_seen() (checked between pieces of COPY
  /// data: the server answers a COPY only when it fails, or with a notice).
  bool input_seen();
  void clear_input_seen() { input_seen_ = false; }
  /// Waits until everything queued for the server (COPY data) is on the socket, reading what
  /// the server sends meanwhile (it may block on writing us notices otherwise).
  void flush_all();
  /// The next result, waited for within the deadlines; null at the end of a statement's results.
  PgResult next_result();
  /// What the sinks read from a result; `with_row` also copies its first row's fields.
  ResultView view(const PGresult* result, bool with_row) const;

 private:
  /// One wait of at most 100 ms for the socket, within the deadlines: answer_timeout without a
  /// byte either way, or stop_grace once a stop was asked for, is a lost connection.
  void wait_for_socket(bool want_write, Deadlines::Clock::time_point& last_progress);
  PgResult finish(int sent);

  std::unique_ptr<Poco::Data::PostgreSQL::SessionHandle> handle_;
  std::string where_;
  Deadlines deadlines_;
  Backend backend_;
  std::shared_ptr<SessionMode> mode_;
  /// Set by libpq's notice receiver when the server said FATAL outside a statement (it is
  /// ending the session); on the heap, so the session can move.
  std::unique_ptr<std::atomic<bool>> ended_ = std::make_unique<std::atomic<bool>>(false);
  bool input_seen_ = false;  // see input_seen()
};

/// Rows in flight on one session in pipeline mode, each followed by a sync point, so each is
/// its own implicit transaction. The caller keeps the rows; the window only sends and reads.
class PipelineWindow {
 public:
  PipelineWindow(PgSession& session, bool with_rows);
  ~PipelineWindow();
  PipelineWindow(const PipelineWindow&) = delete;
  PipelineWindow& operator=(const PipelineWindow&) = delete;

  /// Queues the statement (by name or as text) and its sync point; output goes out as the
  /// socket takes it.
  void send(const Statement& statement, const std::vector<const char*>& values);
  void flush() { session_.flush_some(); }
  /// The oldest row's statement result (first event of its answers).
  ResultView statement_result();
  /// The oldest row's commit (second event): the error it met, or nullopt once its sync point
  /// came back clean.
  std::optional<ResultView> commit();

 private:
  PgSession& session_;
  bool with_rows_;
};

}  // namespace etl::plugins::postgres
