#include "pgoutput.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>

namespace etl::plugins::postgres_cdc {
namespace {

/// Reads big-endian integers and NUL-terminated strings from a message, throwing DecodeError
/// (naming the message kind) when it ends too soon.
class Reader {
 public:
  Reader(std::string_view data, char kind) : data_(data), kind_(kind) {}

  std::uint8_t byte() { return static_cast<std::uint8_t>(take(1)[0]); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(big_endian(2)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(big_endian(4)); }
  std::uint64_t u64() { return big_endian(8); }
  std::string string() {
    const auto end = data_.find('\0', at_);
    if (end == std::string_view::npos) fail("a string without its terminating NUL");
    std::string text(data_.substr(at_, end - at_));
    at_ = end + 1;
    return text;
  }
  std::string_view take(std::size_t count) {
    if (data_.size() - at_ < count) fail("cut short");
    const auto part = data_.substr(at_, count);
    at_ += count;
    return part;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw DecodeError(std::string("pgoutput message '") + kind_ + "': " + what + " at byte " + std::to_string(at_));
  }

 private:
  std::uint64_t big_endian(std::size_t bytes) {
    const auto part = take(bytes);
    std::uint64_t value = 0;
    for (const char c : part) value = (value << 8) | static_cast<unsigned char>(c);
    return value;
  }
  std::string_view data_;
  char kind_;
  std::size_t at_ = 1;  // after the kind byte
};

Tuple read_tuple(Reader& in) {
  const std::uint16_t count = in.u16();
  Tuple tuple(count);
  for (auto& cell : tuple) {
    const char kind = static_cast<char>(in.byte());
    switch (kind) {
      case 'n': cell.kind = Cell::Kind::null; break;
      case 'u': cell.kind = Cell::Kind::unchanged; break;
      case 't':
      case 'b': {
        cell.kind = kind == 't' ? Cell::Kind::text : Cell::Kind::binary;
        cell.data = std::string(in.take(in.u32()));
        break;
      }
      default: in.fail(std::string("a column of unknown kind '") + kind + "'");
    }
  }
  return tuple;
}

bool plain_identifier(const std::string& name) {
  if (name.empty() || !(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (const char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

std::string quoted(const std::string& name) {
  if (plain_identifier(name)) return name;
  std::string text = "\"";
  for (const char c : name) text += c == '"' ? std::string("\"\"") : std::string(1, c);
  return text + "\"";
}

}  // namespace

std::string qualified_name(const std::string& schema, const std::string& name) { return quoted(schema) + "." + quoted(name); }

std::string Relation::qualified_name() const { return postgres_cdc::qualified_name(schema, name); }

std::shared_ptr<const Relation> PgOutputDecoder::relation(std::uint32_t id) const {
  const auto found = relations_.find(id);
  return found == relations_.end() ? nullptr : found->second;
}

Message PgOutputDecoder::decode(std::string_view payload) {
  if (payload.empty()) throw DecodeError("an empty pgoutput message");
  const char kind = payload[0];
  Reader in(payload, kind);
  Message message;
  const auto known_relation = [&](std::uint32_t id) {
    auto found = relation(id);
    if (!found) in.fail("relation " + std::to_string(id) + " was not described by a Relation message before");
    return found;
  };
  switch (kind) {
    case 'B':
      message.kind = Message::Kind::begin;
      message.lsn = in.u64();
      message.commit_time = static_cast<std::int64_t>(in.u64());
      message.xid = in.u32();
      break;
    case 'C':
      message.kind = Message::Kind::commit;
      (void)in.byte();  // flags, unused
      message.lsn = in.u64();
      message.end_lsn = in.u64();
      message.commit_time = static_cast<std::int64_t>(in.u64());
      break;
    case 'R': {
      auto relation = std::make_shared<Relation>();
      relation->id = in.u32();
      relation->schema = in.string();
      relation->name = in.string();
      relation->replica_identity = static_cast<char>(in.byte());
      const std::uint16_t columns = in.u16();
      relation->columns.reserve(columns);
      for (std::uint16_t i = 0; i < columns; ++i) {
        RelationColumn column;
        column.key = (in.byte() & 1) != 0;
        column.name = in.string();
        column.type_oid = in.u32();
        column.type_modifier = static_cast<std::int32_t>(in.u32());
        relation->columns.push_back(std::move(column));
      }
      message.kind = Message::Kind::relation;
      relations_[relation->id] = relation;
      message.relation = std::move(relation);
      break;
    }
    case 'I': {
      message.kind = Message::Kind::insert;
      message.relation = known_relation(in.u32());
      if (in.byte() != 'N') in.fail("no new tuple");
      message.new_tuple = read_tuple(in);
      break;
    }
    case 'U': {
      message.kind = Message::Kind::update;
      message.relation = known_relation(in.u32());
      char part = static_cast<char>(in.byte());
      if (part == 'K' || part == 'O') {
        message.old_kind = part;
        message.old_tuple = read_tuple(in);
        part = static_cast<char>(in.byte());
      }
      if (part != 'N') in.fail("no new tuple");
      message.new_tuple = read_tuple(in);
      break;
    }
    case 'D': {
      message.kind = Message::Kind::remove;
      message.relation = known_relation(in.u32());
      const char part = static_cast<char>(in.byte());
      if (part != 'K' && part != 'O') in.fail("no old key or row");
      message.old_kind = part;
      message.old_tuple = read_tuple(in);
      break;
    }
    case 'T': {
      message.kind = Message::Kind::truncate;
      const std::uint32_t count = in.u32();
      const std::uint8_t options = in.byte();
      message.cascade = (options & 1) != 0;
      message.restart_identity = (options & 2) != 0;
      for (std::uint32_t i = 0; i < count; ++i) message.truncated.push_back(known_relation(in.u32()));
      break;
    }
    case 'Y':  // a type's name (for types that are not built in): their values come as text anyway
    case 'O':  // the origin of a transaction replicated from elsewhere
    case 'M':  // a logical decoding message (pg_logical_emit_message), only sent when asked for
      message.kind = Message::Kind::ignored;
      break;
    default:
      throw DecodeError(std::string("pgoutput message of unknown kind '") + kind +
                        "' (streamed transactions are not asked for; is the slot's plugin pgoutput?)");
  }
  return message;
}

std::string lsn_text(std::uint64_t lsn) {
  char text[32];
  std::snprintf(text, sizeof text, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn & 0xffffffffU));
  return text;
}

std::optional<std::uint64_t> parse_lsn(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) return std::nullopt;
  std::uint32_t high = 0;
  std::uint32_t low = 0;
  const auto first = std::from_chars(text.data(), text.data() + slash, high, 16);
  const auto second = std::from_chars(text.data() + slash + 1, text.data() + text.size(), low, 16);
  if (first.ptr != text.data() + slash || second.ptr != text.data() + text.size()) return std::nullopt;
  return (static_cast<std::uint64_t>(high) << 32) | low;
}

std::string timestamp_text(std::int64_t microseconds_since_2000) {
  constexpr std::int64_t kUnixSecondsAt2000 = 946684800;
  std::int64_t seconds = microseconds_since_2000 / 1000000;
  std::int64_t micros = microseconds_since_2000 % 1000000;
  if (micros < 0) {
    micros += 1000000;
    --seconds;
  }
  const std::time_t unix_seconds = static_cast<std::time_t>(seconds + kUnixSecondsAt2000);
  std::tm utc{};
  gmtime_r(&unix_seconds, &utc);
  char text[40];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(micros));
  return text;
}

}  // namespace etl::plugins::postgres_cdc
