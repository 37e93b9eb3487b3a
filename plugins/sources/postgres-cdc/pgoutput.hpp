#pragma once
// pgoutput's logical replication messages (protocol versions 1 and 2, without streaming of
// transactions in progress), decoded from the payload of each XLogData message: Begin, Commit,
// Relation, Insert, Update, Delete, Truncate, and the ones only passed over (Type, Origin,
// Message). The decoder keeps the relations it was told about: a row change names its relation
// by id, and a Relation message sent again (a column added) replaces what was known. No I/O.
//
// The message formats: PostgreSQL's documentation, "Logical Replication Message Formats".

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace etl::plugins::postgres_cdc {

/// A payload that is not a pgoutput message this decoder knows, or is cut short.
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RelationColumn {
  std::string name;
  std::uint32_t type_oid = 0;
  std::int32_t type_modifier = -1;
  bool key = false;  ///< part of the replica identity
};

struct Relation {
  std::uint32_t id = 0;
  std::string schema;
  std::string name;
  /// d: default (the primary key), n: nothing, f: full (every column), i: an index.
  char replica_identity = 'd';
  std::vector<RelationColumn> columns;

  /// "schema"."name" as written in SQL: schema.name, each quoted when it needs to be.
  [[nodiscard]] std::string qualified_name() const;
};

/// One column's value in a tuple.
struct Cell {
  enum class Kind : char { null = 'n', unchanged = 'u', text = 't', binary = 'b' };
  Kind kind = Kind::null;
  std::string data;  ///< text: the server's text form; binary: its binary form
};
using Tuple = std::vector<Cell>;

struct Message {
  enum class Kind : std::uint8_t { begin, commit, relation, insert, update, remove, truncate, ignored };
  Kind kind = Kind::ignored;

  // begin: the transaction's commit LSN (final_lsn), commit time and id.
  // commit: its commit LSN, end LSN (the position after it) and commit time.
  std::uint64_t lsn = 0;
  std::uint64_t end_lsn = 0;
  std::int64_t commit_time = 0;  ///< microseconds since 2000-01-01 00:00 UTC (PostgreSQL's epoch)
  std::uint32_t xid = 0;

  /// insert, update, delete: the relation; relation: the one just described.
  std::shared_ptr<const Relation> relation;
  /// update, delete: the old row's key ('K'), the whole old row ('O'), or none (0).
  char old_kind = 0;
  Tuple old_tuple;
  /// insert, update: the new row.
  Tuple new_tuple;

  /// truncate: the relations, and its options.
  std::vector<std::shared_ptr<const Relation>> truncated;
  bool cascade = false;
  bool restart_identity = false;
};

class PgOutputDecoder {
 public:
  /// Decodes one message. Throws DecodeError for a message cut short, of a kind it does not
  /// know, or naming a relation it was not told about.
  Message decode(std::string_view payload);

  /// The relation with `id`, if it was described.
  [[nodiscard]] std::shared_ptr<const Relation> relation(std::uint32_t id) const;

 private:
  std::unordered_map<std::uint32_t, std::shared_ptr<const Relation>> relations_;
};

/// schema.name as written in SQL, each part quoted when it needs to be (what _table holds).
std::string qualified_name(const std::string& schema, const std::string& name);

/// "16/B374D848": an LSN as PostgreSQL writes it.
std::string lsn_text(std::uint64_t lsn);
/// Parses lsn_text()'s form; nullopt when `text` is not one.
std::optional<std::uint64_t> parse_lsn(std::string_view text);
/// "2026-12-03T12:00:00.123456Z" for microseconds since 2000-01-01 UTC.
std::string timestamp_text(std::int64_t microseconds_since_2000);

}  // namespace etl::plugins::postgres_cdc
