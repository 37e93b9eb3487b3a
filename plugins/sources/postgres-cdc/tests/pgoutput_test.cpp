// The pgoutput decoder and the records it makes, from messages built byte by byte as the server
// sends them (PostgreSQL's "Logical Replication Message Formats"): every message kind, every
// mapped type, NULL, unchanged TOAST, a relation whose columns change mid-stream, and messages
// cut short.
#include <gtest/gtest.h>

#include <cmath>

#include "change_records.hpp"
#include "etl/sdk/json.hpp"
#include "pgoutput.hpp"

namespace etl::plugins::postgres_cdc {
namespace {

/// A pgoutput message, built as the server writes it: big-endian integers, NUL-ended strings.
class Bytes {
 public:
  explicit Bytes(char kind) { data_.push_back(kind); }
  Bytes& u8(std::uint8_t value) { data_.push_back(static_cast<char>(value)); return *this; }
  Bytes& u16(std::uint16_t value) { return be(value, 2); }
  Bytes& u32(std::uint32_t value) { return be(value, 4); }
  Bytes& u64(std::uint64_t value) { return be(value, 8); }
  Bytes& str(const std::string& text) { data_ += text; data_.push_back('\0'); return *this; }
  Bytes& text_cell(const std::string& text) { u8('t').u32(static_cast<std::uint32_t>(text.size())); data_ += text; return *this; }
  Bytes& null_cell() { return u8('n'); }
  Bytes& unchanged_cell() { return u8('u'); }
  [[nodiscard]] const std::string& data() const { return data_; }

 private:
  Bytes& be(std::uint64_t value, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) data_.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
    return *this;
  }
  std::string data_;
};

struct Col {
  std::string name;
  std::uint32_t oid;
  bool key = false;
};

std::string relation_message(std::uint32_t id, const std::string& schema, const std::string& name, char identity,
                             const std::vector<Col>& columns) {
  Bytes bytes('R');
  bytes.u32(id).str(schema).str(name).u8(static_cast<std::uint8_t>(identity)).u16(static_cast<std::uint16_t>(columns.size()));
  for (const auto& column : columns) bytes.u8(column.key ? 1 : 0).str(column.name).u32(column.oid).u32(0xffffffff);
  return bytes.data();
}

const std::vector<Col> kEveryType = {{"id", 23, true}, {"small", 21},   {"big", 20},   {"price", 1700}, {"ratio", 701},
                                     {"ok", 16},       {"name", 25},    {"born", 1082}, {"at", 1184},   {"doc", 3802},
                                     {"raw", 17},      {"tags", 1009},  {"mood", 99999}, {"note", 25}};

sdk::Record insert_of(PgOutputDecoder& decoder, const std::vector<std::string>& texts) {
  Bytes insert('I');
  insert.u32(16384).u8('N').u16(static_cast<std::uint16_t>(texts.size()));
  for (const auto& text : texts) {
    if (text == "<null>") insert.null_cell(); else insert.text_cell(text);
  }
  const Message message = decoder.decode(insert.data());
  return change_record(message, TransactionFacts{771, 0}, 0x16B3748);
}

const sdk::Value& field(const sdk::Record& record, const std::string& name) {
  for (const auto& f : record.fields()) {
    if (f.name == name) return f.value;
  }
  throw std::runtime_error("no field " + name);
}

bool has_field(const sdk::Record& record, const std::string& name) {
  for (const auto& f : record.fields()) {
    if (f.name == name) return true;
  }
  return false;
}

TEST(PgOutput, BeginAndCommitCarryTheTransactionsPositionsTimeAndId) {
  PgOutputDecoder decoder;
  const Message begin = decoder.decode(Bytes('B').u64(0x100000200ULL).u64(123456789).u32(771).data());
  EXPECT_EQ(begin.kind, Message::Kind::begin);
  EXPECT_EQ(begin.lsn, 0x100000200ULL);
  EXPECT_EQ(begin.commit_time, 123456789);
  EXPECT_EQ(begin.xid, 771u);
  const Message commit = decoder.decode(Bytes('C').u8(0).u64(0x100000200ULL).u64(0x100000230ULL).u64(123456789).data());
  EXPECT_EQ(commit.kind, Message::Kind::commit);
  EXPECT_EQ(commit.lsn, 0x100000200ULL);
  EXPECT_EQ(commit.end_lsn, 0x100000230ULL);
}

TEST(PgOutput, EveryMappedTypeBecomesItsSdkValue) {
  PgOutputDecoder decoder;
  decoder.decode(relation_message(16384, "public", "Items", 'd', kEveryType));
  const sdk::Record record =
      insert_of(decoder, {"7", "-3", "9007199254740993", "12345678901234567890.000001", "0.25", "t", "héllo", "1990-05-17",
                          "2026-12-03 12:00:00.5+00", R"({"a": [1, 2]})", "\\x00ff41", "{a,b}", "happy", "<null>"});
  EXPECT_EQ(field(record, "id").as_int(), 7);
  EXPECT_EQ(field(record, "small").as_int(), -3);
  EXPECT_EQ(field(record, "big").as_int(), 9007199254740993LL);  // beyond a double's exact integers
  EXPECT_EQ(field(record, "price").type(), sdk::ValueType::string);  // numeric stays exact
  EXPECT_EQ(*field(record, "price").text(), "12345678901234567890.000001");
  EXPECT_DOUBLE_EQ(field(record, "ratio").as_real(), 0.25);
  EXPECT_EQ(field(record, "ok").type(), sdk::ValueType::boolean);
  EXPECT_TRUE(field(record, "ok").as_bool());
  EXPECT_EQ(*field(record, "name").text(), "héllo");
  EXPECT_EQ(*field(record, "born").text(), "1990-05-17");
  EXPECT_EQ(*field(record, "at").text(), "2026-12-03 12:00:00.5+00");
  EXPECT_EQ(field(record, "doc").type(), sdk::ValueType::json);
  EXPECT_EQ(nlohmann::json::parse(*field(record, "doc").text()), nlohmann::json::parse(R"({"a":[1,2]})"));
  EXPECT_EQ(field(record, "raw").type(), sdk::ValueType::bytes);
  EXPECT_EQ(field(record, "raw").stored_text(), std::string("\x00\xff" "A", 3));
  EXPECT_EQ(*field(record, "tags").text(), "{a,b}");  // arrays as text
  EXPECT_EQ(*field(record, "mood").text(), "happy");  // a type without a mapping (an enum): text
  EXPECT_TRUE(field(record, "note").is_null());
  EXPECT_EQ(*field(record, "_op").text(), "insert");
  EXPECT_EQ(*field(record, "_table").text(), "public.\"Items\"");
  EXPECT_EQ(*field(record, "_lsn").text(), "0/16B3748");
  EXPECT_EQ(field(record, "_xid").as_int(), 771);
  EXPECT_EQ(*field(record, "_commit_time").text(), "2000-01-01T00:00:00.000000Z");
  EXPECT_EQ(record.origin, "public.\"Items\"@0/16B3748");
  EXPECT_FALSE(has_field(record, "_unchanged"));
}

TEST(PgOutput, FloatsKeepNotANumberAndInfinity) {
  EXPECT_TRUE(std::isnan(column_value(701, "NaN").as_real()));
  EXPECT_EQ(column_value(700, "-Infinity").as_real(), -INFINITY);
  EXPECT_EQ(column_value(3802, "\"just text\"").type(), sdk::ValueType::string);  // a JSON scalar
  EXPECT_THROW(column_value(23, "12x"), std::runtime_error);
  EXPECT_THROW(column_value(17, "\\xZZ"), std::runtime_error);
}

TEST(PgOutput, AnUpdateWithTheOldKeyAndAnUnchangedToastColumn) {
  PgOutputDecoder decoder;
  decoder.decode(relation_message(1, "public", "docs", 'd', {{"id", 23, true}, {"body", 25}, {"title", 25}}));
  Bytes update('U');
  update.u32(1).u8('K').u16(3).text_cell("1").null_cell().null_cell();  // the key changed: 1 -> 2
  update.u8('N').u16(3).text_cell("2").unchanged_cell().text_cell("new title");
  const Message message = decoder.decode(update.data());
  ASSERT_EQ(message.kind, Message::Kind::update);
  EXPECT_EQ(message.old_kind, 'K');
  const sdk::Record record = change_record(message, TransactionFacts{}, 10);
  EXPECT_EQ(field(record, "id").as_int(), 2);
  EXPECT_FALSE(has_field(record, "body"));  // not sent, so not turned into NULL
  EXPECT_EQ(nlohmann::json::parse(*field(record, "_unchanged").text()), nlohmann::json::parse(R"(["body"])"));
  EXPECT_EQ(nlohmann::json::parse(*field(record, "_old").text()), nlohmann::json::parse(R"({"id":1})"));
  EXPECT_EQ(*field(record, "_op").text(), "update");
}

TEST(PgOutput, DeletesCarryTheKeyOrWithReplicaIdentityFullTheWholeOldRow) {
  PgOutputDecoder decoder;
  decoder.decode(relation_message(1, "s", "t", 'd', {{"id", 23, true}, {"name", 25}}));
  Bytes by_key('D');
  by_key.u32(1).u8('K').u16(2).text_cell("5").null_cell();
  const sdk::Record keyed = change_record(decoder.decode(by_key.data()), TransactionFacts{}, 1);
  EXPECT_EQ(*field(keyed, "_op").text(), "delete");
  EXPECT_EQ(field(keyed, "id").as_int(), 5);
  EXPECT_FALSE(has_field(keyed, "name"));  // not part of the key: not known

  decoder.decode(relation_message(1, "s", "t", 'f', {{"id", 23, true}, {"name", 25, true}}));
  Bytes whole('D');
  whole.u32(1).u8('O').u16(2).text_cell("6").text_cell("six");
  const sdk::Record full = change_record(decoder.decode(whole.data()), TransactionFacts{}, 1);
  EXPECT_EQ(*field(full, "name").text(), "six");
}

TEST(PgOutput, TruncateNamesEachRelationWithItsOptions) {
  PgOutputDecoder decoder;
  decoder.decode(relation_message(1, "public", "a", 'd', {{"id", 23, true}}));
  decoder.decode(relation_message(2, "public", "b", 'd', {{"id", 23, true}}));
  const Message truncate = decoder.decode(Bytes('T').u32(2).u8(2).u32(1).u32(2).data());
  ASSERT_EQ(truncate.kind, Message::Kind::truncate);
  const auto records = truncate_records(truncate, TransactionFacts{}, 99);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(*field(records[1], "_table").text(), "public.b");
  EXPECT_EQ(*field(records[0], "_op").text(), "truncate");
  EXPECT_TRUE(field(records[0], "_restart_identity").as_bool());
  EXPECT_FALSE(field(records[0], "_cascade").as_bool());
}

TEST(PgOutput, ARelationDescribedAgainMidStreamChangesTheColumnsOfTheNextChanges) {
  PgOutputDecoder decoder;
  decoder.decode(relation_message(9, "public", "t", 'd', {{"id", 23, true}}));
  const Message before = decoder.decode(Bytes('I').u32(9).u8('N').u16(1).text_cell("1").data());
  decoder.decode(relation_message(9, "public", "t", 'd', {{"id", 23, true}, {"added", 20}}));  // ALTER TABLE ADD COLUMN
  const Message after = decoder.decode(Bytes('I').u32(9).u8('N').u16(2).text_cell("2").text_cell("40").data());
  EXPECT_EQ(change_record(before, TransactionFacts{}, 1).fields().size(), 1u + change_fields().size() - 2);
  const sdk::Record record = change_record(after, TransactionFacts{}, 2);
  EXPECT_EQ(field(record, "added").as_int(), 40);
  EXPECT_EQ(before.relation->columns.size(), 1u);  // the change decoded before keeps its relation
}

TEST(PgOutput, MessagesCutShortOrUnknownOrOfAnUnknownRelationAreErrorsNamingThem) {
  PgOutputDecoder decoder;
  EXPECT_THROW(decoder.decode(""), DecodeError);
  EXPECT_THROW(decoder.decode(Bytes('B').u64(1).data()), DecodeError);
  EXPECT_THROW(decoder.decode(Bytes('Z').data()), DecodeError);
  try {
    decoder.decode(Bytes('I').u32(77).u8('N').u16(0).data());
    FAIL() << "an insert into a relation never described was decoded";
  } catch (const DecodeError& e) {
    EXPECT_NE(std::string(e.what()).find("relation 77"), std::string::npos) << e.what();
  }
  decoder.decode(relation_message(1, "public", "t", 'd', {{"id", 23, true}}));
  Bytes cut('I');
  cut.u32(1).u8('N').u16(1).u8('t').u32(10);
  EXPECT_THROW(decoder.decode(cut.data() + "abc"), DecodeError);
  EXPECT_EQ(decoder.decode(Bytes('Y').u32(5).str("public").str("mood").data()).kind, Message::Kind::ignored);
}

TEST(PgOutput, LsnsAndTimestampsInPostgresqlsForms) {
  EXPECT_EQ(lsn_text(0x16B3748), "0/16B3748");
  EXPECT_EQ(lsn_text(0x1600000000ULL | 0xB374D848ULL), "16/B374D848");
  EXPECT_EQ(parse_lsn("16/B374D848"), 0x16B374D848ULL);
  EXPECT_EQ(parse_lsn("nonsense"), std::nullopt);
  EXPECT_EQ(parse_lsn("1/"), std::nullopt);
  // 2026-12-03T12:00:00.5Z: 849,614,400.5 s after 2000-01-01.
  EXPECT_EQ(timestamp_text(849614400LL * 1000000 + 500000), "2026-12-03T12:00:00.500000Z");
  EXPECT_EQ(timestamp_text(-1), "1999-12-31T23:59:59.999999Z");
}

}  // namespace
}  // namespace etl::plugins::postgres_cdc
