#include "change_records.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <stdexcept>

#include "etl/sdk/json.hpp"

namespace etl::plugins::postgres_cdc {
namespace {

// Built-in type OIDs (pg_type.dat; stable across versions).
constexpr std::uint32_t kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kJson = 114,
                        kFloat4 = 700, kFloat8 = 701, kJsonb = 3802;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string bytea_from_hex(const std::string& text) {
  if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) {
    throw std::runtime_error("bytea not in hex form (bytea_output = hex)");
  }
  std::string raw;
  raw.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i < text.size(); i += 2) {
    const int high = hex_digit(text[i]);
    const int low = hex_digit(text[i + 1]);
    if (high < 0 || low < 0) throw std::runtime_error("bytea with a character that is not hex");
    raw.push_back(static_cast<char>((high << 4) | low));
  }
  return raw;
}

const std::string& name_of(const Relation& relation, std::size_t column) {
  if (column >= relation.columns.size()) {
    throw std::runtime_error(relation.qualified_name() + ": a tuple with more columns than its relation has");
  }
  return relation.columns[column].name;
}

/// Appends the columns of `tuple` to `fields` (`keys_only`: the replica identity's alone);
/// unchanged TOAST columns go to `unchanged` instead.
void add_columns(const Relation& relation, const Tuple& tuple, bool keys_only, std::vector<sdk::Field>& fields,
                 nlohmann::json* unchanged) {
  for (std::size_t i = 0; i < tuple.size(); ++i) {
    const std::string& name = name_of(relation, i);
    if (keys_only && !relation.columns[i].key) continue;
    const Cell& cell = tuple[i];
    switch (cell.kind) {
      case Cell::Kind::null: fields.push_back(sdk::Field{name, sdk::Value()}); break;
      case Cell::Kind::unchanged:
        if (unchanged != nullptr) unchanged->push_back(name);
        break;
      case Cell::Kind::text: fields.push_back(sdk::Field{name, column_value(relation.columns[i].type_oid, cell.data)}); break;
      case Cell::Kind::binary:
        throw std::runtime_error(relation.qualified_name() + "." + name + ": a value in binary form (binary is not asked for)");
    }
  }
}

const char* op_name(Message::Kind kind) {
  switch (kind) {
    case Message::Kind::insert: return "insert";
    case Message::Kind::update: return "update";
    case Message::Kind::remove: return "delete";
    case Message::Kind::truncate: return "truncate";
    default: throw std::logic_error("not a row change");
  }
}

void add_change_fields(std::vector<sdk::Field>& fields, const char* op, const Relation& relation,
                       const TransactionFacts& transaction, std::uint64_t lsn) {
  fields.push_back(sdk::Field{"_op", sdk::Value(op)});
  fields.push_back(sdk::Field{"_table", sdk::Value(relation.qualified_name())});
  fields.push_back(sdk::Field{"_lsn", sdk::Value(lsn_text(lsn))});
  fields.push_back(sdk::Field{"_commit_time", sdk::Value(timestamp_text(transaction.commit_time))});
  fields.push_back(sdk::Field{"_xid", sdk::Value(static_cast<std::int64_t>(transaction.xid))});
}

}  // namespace

sdk::Value column_value(std::uint32_t type_oid, const std::string& text) {
  switch (type_oid) {
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid: {
      std::int64_t number = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (error != std::errc() || end != text.data() + text.size()) throw std::runtime_error("not an integer: " + text);
      return sdk::Value(number);
    }
    case kFloat4:
    case kFloat8: {
      errno = 0;
      char* end = nullptr;
      const double number = std::strtod(text.c_str(), &end);  // reads NaN, Infinity, -Infinity too
      if (end != text.c_str() + text.size()) throw std::runtime_error("not a number: " + text);
      return sdk::Value(number);
    }
    case kBool:
      if (text == "t") return sdk::Value(true);
      if (text == "f") return sdk::Value(false);
      throw std::runtime_error("not a boolean: " + text);
    case kBytea: return sdk::Value::bytes(bytea_from_hex(text));
    case kJson:
    case kJsonb: {
      const auto first = text.find_first_not_of(" \t\r\n");
      if (first != std::string::npos && (text[first] == '{' || text[first] == '[')) {
        // jsonb comes normalised; json as it was written: compacted, so the text form is one.
        return sdk::Value::json(type_oid == kJsonb ? text : nlohmann::json::parse(text).dump());
      }
      return sdk::Value(text);
    }
    default: return sdk::Value(text);
  }
}

sdk::Record change_record(const Message& change, const TransactionFacts& transaction, std::uint64_t lsn) {
  const Relation& relation = *change.relation;
  sdk::Record record;
  auto& fields = record.fields();
  fields.reserve(relation.columns.size() + 7);
  nlohmann::json unchanged = nlohmann::json::array();
  if (change.kind == Message::Kind::remove) {
    add_columns(relation, change.old_tuple, change.old_kind == 'K', fields, &unchanged);
  } else {
    add_columns(relation, change.new_tuple, false, fields, &unchanged);
  }
  add_change_fields(fields, op_name(change.kind), relation, transaction, lsn);
  if (change.kind == Message::Kind::update && change.old_kind != 0) {
    std::vector<sdk::Field> old;
    add_columns(relation, change.old_tuple, change.old_kind == 'K', old, nullptr);
    fields.push_back(sdk::Field{"_old", sdk::Value::json(sdk::to_json_object(old).dump())});
  }
  if (!unchanged.empty()) fields.push_back(sdk::Field{"_unchanged", sdk::Value::json(unchanged.dump())});
  record.origin = relation.qualified_name() + "@" + lsn_text(lsn);
  return record;
}

std::vector<sdk::Record> truncate_records(const Message& truncate, const TransactionFacts& transaction, std::uint64_t lsn) {
  std::vector<sdk::Record> records;
  for (const auto& relation : truncate.truncated) {
    sdk::Record record;
    add_change_fields(record.fields(), "truncate", *relation, transaction, lsn);
    record.fields().push_back(sdk::Field{"_cascade", sdk::Value(truncate.cascade)});
    record.fields().push_back(sdk::Field{"_restart_identity", sdk::Value(truncate.restart_identity)});
    record.origin = relation->qualified_name() + "@" + lsn_text(lsn);
    records.push_back(std::move(record));
  }
  return records;
}

const std::vector<std::string>& change_fields() {
  static const std::vector<std::string> names = {"_op", "_table", "_lsn", "_commit_time", "_xid", "_old", "_unchanged"};
  return names;
}

std::vector<std::string> record_fields(const Relation& relation) {
  std::vector<std::string> names;
  for (const auto& column : relation.columns) names.push_back(column.name);
  names.insert(names.end(), change_fields().begin(), change_fields().end());
  return names;
}

}  // namespace etl::plugins::postgres_cdc
