#include "replication_stream.hpp"

#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>

#include "postgres/error_kind.hpp"
#include "postgres/sql_text.hpp"

namespace etl::plugins::postgres_cdc {
namespace {

// Microseconds between 1970-01-01 and 2000-01-01 (PostgreSQL's epoch).
constexpr std::int64_t kEpochOffsetMicros = 946684800LL * 1000000;

std::int64_t now_since_2000() {
  timeval now{};
  ::gettimeofday(&now, nullptr);
  return static_cast<std::int64_t>(now.tv_sec) * 1000000 + now.tv_usec - kEpochOffsetMicros;
}

void put64(char* at, std::uint64_t value) {
  for (int i = 7; i >= 0; --i, value >>= 8) at[i] = static_cast<char>(value & 0xff);
}

std::uint64_t get64(const char* at) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(at[i]);
  return value;
}

std::string literal(const std::string& value) {
  std::string text = "'";
  for (const char c : value) text += c == '\'' ? std::string("''") : std::string(1, c);
  return text + "'";
}

}  // namespace

bool transient_sqlstate(const std::string& sqlstate) {
  if (sqlstate.empty()) return true;  // no answer: the connection failed or was lost
  const std::string klass = sqlstate.substr(0, 2);
  // 08 connection, 57 operator intervention (shutdown, restart, admin), 53 resources, 58 system,
  // 55006 the slot is active for another process (a run just killed: the server notices soon).
  return klass == "08" || klass == "57" || klass == "53" || klass == "58" || sqlstate == "55006";
}

ReplicationStream::ReplicationStream(std::string conninfo, std::string where)
    : conninfo_(std::move(conninfo) + " replication='database'"), where_(std::move(where)) {}

ReplicationStream::~ReplicationStream() { close(); }

void ReplicationStream::close() noexcept {
  if (buffer_ != nullptr) PQfreemem(buffer_);
  buffer_ = nullptr;
  connection_.reset();
}

void ReplicationStream::fail(const std::string& what, const PGresult* result) {
  const std::string sqlstate = result != nullptr ? postgres::error_field(result, PG_DIAG_SQLSTATE) : std::string();
  std::string message = result != nullptr ? postgres::error_field(result, PG_DIAG_MESSAGE_PRIMARY) : std::string();
  if (message.empty() && connection_) message = PQerrorMessage(connection_.get());
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  const bool lost = !connection_ || PQstatus(connection_.get()) == CONNECTION_BAD;
  const std::string text = "PostgreSQL at " + where_ + ": " + what + ": " + (sqlstate.empty() ? "" : sqlstate + " ") + message;
  close();
  throw ReplicationError(text, lost || transient_sqlstate(sqlstate), sqlstate);
}

void ReplicationStream::start(const std::string& slot, const std::string& publication, int proto_version, std::uint64_t from) {
  close();
  connection_.reset(PQconnectdb(conninfo_.c_str()));
  if (PQstatus(connection_.get()) != CONNECTION_OK) {
    std::string message = PQerrorMessage(connection_.get());
    while (!message.empty() && message.back() == '\n') message.pop_back();
    // A role without REPLICATION: "must be superuser or replication role to start walsender".
    const bool refused = postgres::is_permanent_connect_failure(message) ||
                         message.find("replication role to start walsender") != std::string::npos;
    close();
    throw ReplicationError("PostgreSQL at " + where_ + ": cannot open a replication connection: " + message, !refused);
  }
  char position[32];
  std::snprintf(position, sizeof position, "%X/%X", static_cast<unsigned>(from >> 32), static_cast<unsigned>(from));
  const std::string command = "START_REPLICATION SLOT " + postgres::quote_identifier(slot) + " LOGICAL " + position + " (proto_version " +
                              literal(std::to_string(proto_version)) + ", publication_names " +
                              literal(postgres::quote_identifier(publication)) + ")";
  postgres::PgResult result(PQexec(connection_.get(), command.c_str()));
  if (PQresultStatus(result.get()) != PGRES_COPY_BOTH) fail("START_REPLICATION of slot \"" + slot + "\"", result.get());
}

ReplicationStream::Message ReplicationStream::next(std::chrono::milliseconds wait) {
  if (buffer_ != nullptr) {
    PQfreemem(buffer_);
    buffer_ = nullptr;
  }
  Message message;
  if (!connection_) throw ReplicationError("PostgreSQL at " + where_ + ": the replication connection is closed", true);
  for (int round = 0; round < 2; ++round) {
    const int length = PQgetCopyData(connection_.get(), &buffer_, /*async=*/1);
    if (length == 0) {
      if (round == 1) return message;
      pollfd watched{PQsocket(connection_.get()), POLLIN, 0};
      const int ready = ::poll(&watched, 1, static_cast<int>(wait.count()));
      if (ready < 0 && errno != EINTR) fail(std::string("waiting for the stream: ") + std::strerror(errno));
      if (ready <= 0) return message;
      if (PQconsumeInput(connection_.get()) == 0) fail("reading the stream");
      continue;
    }
    if (length == -1) {
      postgres::PgResult result(PQgetResult(connection_.get()));
      fail("the server ended the replication stream", result.get());
    }
    if (length < 0) fail("reading the stream");
    const char* data = buffer_;
    if (data[0] == 'w' && length >= 25) {
      message.kind = Message::Kind::data;
      message.wal_start = get64(data + 1);
      message.wal_end = get64(data + 9);
      message.payload = std::string_view(data + 25, static_cast<std::size_t>(length - 25));
      return message;
    }
    if (data[0] == 'k' && length >= 18) {
      message.kind = Message::Kind::keepalive;
      message.wal_end = get64(data + 1);
      message.reply_requested = data[17] != 0;
      return message;
    }
    fail("a stream message of unknown kind '" + std::string(1, data[0]) + "'");
  }
  return message;
}

void ReplicationStream::send_status(std::uint64_t flushed, bool reply_requested) {
  if (!connection_) return;
  char update[34];
  update[0] = 'r';
  put64(update + 1, flushed);   // written
  put64(update + 9, flushed);   // flushed
  put64(update + 17, flushed);  // applied
  put64(update + 25, static_cast<std::uint64_t>(now_since_2000()));
  update[33] = reply_requested ? 1 : 0;
  if (PQputCopyData(connection_.get(), update, sizeof update) != 1 || PQflush(connection_.get()) != 0) {
    fail("sending a standby status update");
  }
}

}  // namespace etl::plugins::postgres_cdc
