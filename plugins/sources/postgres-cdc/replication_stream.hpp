#pragma once
// A logical replication connection (libpq, replication=database): START_REPLICATION of a slot
// with pgoutput, the CopyBoth stream's XLogData and keepalive messages, and standby status
// updates that confirm a position. The I/O only: what the messages mean is pgoutput.hpp's.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "postgres/connection.hpp"

namespace etl::plugins::postgres_cdc {

/// A replication command or the stream failed. `transient`: the connection was lost or the
/// server is starting or stopping (reconnect); otherwise it can never work as configured.
class ReplicationError : public std::runtime_error {
 public:
  ReplicationError(const std::string& message, bool transient, std::string sqlstate = {})
      : std::runtime_error(message), transient_(transient), sqlstate_(std::move(sqlstate)) {}
  [[nodiscard]] bool transient() const noexcept { return transient_; }
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  bool transient_;
  std::string sqlstate_;
};

/// Whether an error with this SQLSTATE (empty: none, the connection failed) may pass by itself.
bool transient_sqlstate(const std::string& sqlstate);

class ReplicationStream {
 public:
  struct Message {
    enum class Kind : std::uint8_t { none, data, keepalive };
    Kind kind = Kind::none;
    std::uint64_t wal_start = 0;  ///< data: the WAL position of the change
    std::uint64_t wal_end = 0;    ///< the server's WAL end as sent
    bool reply_requested = false; ///< keepalive: the server wants a status update now
    std::string_view payload;     ///< data: the pgoutput message (valid until the next call)
  };

  /// `conninfo` of the database (replication=database is added), `where` for messages.
  ReplicationStream(std::string conninfo, std::string where);
  ~ReplicationStream();
  ReplicationStream(const ReplicationStream&) = delete;
  ReplicationStream& operator=(const ReplicationStream&) = delete;

  /// Connects and runs START_REPLICATION SLOT `slot` LOGICAL `from` with pgoutput for
  /// `publication`. Throws ReplicationError.
  void start(const std::string& slot, const std::string& publication, int proto_version, std::uint64_t from);
  /// The next message, waiting at most `wait`; Kind::none when none came. Throws
  /// ReplicationError (the stream ended, the connection was lost).
  Message next(std::chrono::milliseconds wait);
  /// Confirms `flushed` (written, flushed and applied: the pipeline has settled everything
  /// before it); `reply_requested` asks the server for a keepalive at once. Throws
  /// ReplicationError.
  void send_status(std::uint64_t flushed, bool reply_requested = false);
  void close() noexcept;
  [[nodiscard]] bool connected() const noexcept { return connection_ != nullptr; }

 private:
  [[noreturn]] void fail(const std::string& what, const PGresult* result = nullptr);

  std::string conninfo_;
  std::string where_;
  postgres::PgConn connection_;
  char* buffer_ = nullptr;  // the last message PQgetCopyData gave
};

}  // namespace etl::plugins::postgres_cdc
