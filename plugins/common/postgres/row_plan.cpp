#include "postgres/row_plan.hpp"

#include <algorithm>

#include "etl/sdk/json.hpp"

namespace etl::plugins::postgres {

// ---- RowPlan ----

RowPlan::RowPlan(const WriteTarget& config) : schema_(config.schema), table_(config.table) {
  missing_is_null_ = config.missing_field == "null";
  for (const auto& [record_field, column] : config.columns) add_column(record_field, column, config);
  for (const auto& [column, value] : config.constants) {
    if (std::find(columns_.begin(), columns_.end(), column) != columns_.end()) {
      throw sdk::ConfigError("/constants/" + column, "column \"" + column + "\" is also mapped in columns");
    }
    add_column("", column, config).constant = value;
  }
  for (const auto& [column, type] : config.casts) {
    if (config.mode == "statement") throw sdk::ConfigError("/casts", "statement mode writes its casts in the statement");
    if (std::find(columns_.begin(), columns_.end(), column) == columns_.end()) {
      throw sdk::ConfigError("/casts/" + column, "column \"" + column + "\" is not one of the mapped columns");
    }
  }
  if (config.mode == "statement") {
    plan_user_statements(config);
  } else if (config.mode == "changes") {
    plan_changes(config);
  } else {
    if (config.table.empty()) throw sdk::ConfigError("/table", "give the table to write to (mode " + config.mode + ")");
    if (config.columns.empty()) {
      throw sdk::ConfigError("/columns", "map at least one record field to a column, e.g. {\"token\": \"data\"}");
    }
    plan_statement(config);
  }
  // Which sources each statement binds: a record needs only its own statement's fields.
  for (const auto& statement : statements_) {
    std::vector<bool> needed(sources_.size(), mode_ != WriteMode::statement);
    for (const auto index : statement.parameters) needed[index] = true;
    needed_.push_back(std::move(needed));
  }
}

std::optional<sdk::Outcome> RowPlan::fill(const sdk::Record& record, Row& row) const {
  row.sequence = record.sequence;
  if (mode_ == WriteMode::changes) return fill_change(record, row);
  if (!statement_field_.empty()) {
    const std::optional<std::string> chooser = record.text(statement_field_);
    const auto chosen = chooser ? statement_for_value_.find(*chooser) : statement_for_value_.end();
    if (chosen == statement_for_value_.end()) {
      return sdk::Outcome::rejected("unknown_statement", "field \"" + statement_field_ + "\" is " +
                                                             (chooser ? "\"" + *chooser + "\"" : "missing") +
                                                             ", for which no statement is configured");
    }
    row.statement = static_cast<std::uint16_t>(chosen->second);
  }
  row.values.clear();
  row.values.reserve(sources_.size());
  const std::vector<bool>& needed = needed_[row.statement];
  std::string scratch;
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    const std::string* text = nullptr;
    if (auto refusal = value_text(record, i, needed[i], scratch, text)) return refusal;
    row.values.push_back(text ? std::optional<std::string>(*text) : std::nullopt);
  }
  row.key_hash = key_hash(row);
  return std::nullopt;
}

std::optional<sdk::Outcome> RowPlan::append_copy_line(const sdk::Record& record, std::string& out,
                                               std::optional<std::size_t> ordinal) const {
  const std::size_t start = out.size();
  std::string scratch;
  CopyLineWriter line(out);
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    const std::string* text = nullptr;
    if (auto refusal = value_text(record, i, true, scratch, text)) {
      out.resize(start);
      return refusal;
    }
    line.value(text);
  }
  if (ordinal) line.ordinal(*ordinal);
  line.end();
  return std::nullopt;
}

WriteMode RowPlan::answer_mode(std::size_t statement) const {
  if (mode_ != WriteMode::changes) return mode_;
  if (statement == kChangeUpdateKeeping) return WriteMode::update;
  return statement >= kChangeRemove ? WriteMode::remove : WriteMode::upsert;
}

std::vector<const char*> RowPlan::parameters(const Row& row) const {
  const WriteStatement& statement = statements_[row.statement];
  std::vector<const char*> values;
  values.reserve(statement.parameters.size());
  for (const auto index : statement.parameters) values.push_back(row.values[index] ? row.values[index]->c_str() : nullptr);
  return values;
}

std::vector<const char*> RowPlan::column_values(const Row& row) {
  std::vector<const char*> values;
  values.reserve(row.values.size());
  for (const auto& value : row.values) values.push_back(value ? value->c_str() : nullptr);
  return values;
}

std::optional<sdk::Outcome> RowPlan::value_text(const sdk::Record& record, std::size_t i, bool needed, std::string& scratch,
                                         const std::string*& text) const {
  const Source& source = sources_[i];
  text = nullptr;
  if (source.constant) {
    text = &*source.constant;
    return std::nullopt;
  }
  const sdk::Field* found = record.find(source.field);
  if (found == nullptr) {
    if (!needed || (!source.fallback && missing_is_null_)) return std::nullopt;  // another statement's, or NULL
    if (source.fallback) {
      text = &*source.fallback;
      return std::nullopt;
    }
    return sdk::Outcome::rejected("missing_field", "the record has no field \"" + source.field +
                                                       "\" (mapped to column \"" + columns_[i] + "\")");
  }
  // Parameters go as text: every type has one (etl/sdk/value.hpp), which PostgreSQL's
  // input functions read (bytea's \x form included).
  const sdk::Value& value = found->value;
  if (value.is_null()) return std::nullopt;
  if (value.type() == sdk::ValueType::string || value.type() == sdk::ValueType::json) {
    text = &value.stored_text();
  } else {
    scratch = value.text().value_or(std::string());
    text = &scratch;
  }
  if (text->find('\0') != std::string::npos) {
    // libpq passes text parameters as C strings, and COPY text cannot carry one either: a
    // NUL would silently cut the value.
    return sdk::Outcome::rejected("22021", "field \"" + source.field +
                                               "\" contains a NUL byte, which PostgreSQL text cannot store");
  }
  return std::nullopt;
}

RowPlan::Source& RowPlan::add_column(const std::string& field, const std::string& column, const WriteTarget& config) {
  Source source;
  source.field = field;
  if (const auto fallback = config.defaults.find(field); !field.empty() && fallback != config.defaults.end()) {
    source.fallback = fallback->second;
  }
  const auto cast = config.casts.find(column);
  casts_.push_back(cast == config.casts.end() ? std::string() : cast->second);
  columns_.push_back(column);
  sources_.push_back(std::move(source));
  return sources_.back();
}

std::size_t RowPlan::key_hash(const Row& row) const {
  std::size_t hash = 0;
  auto mix = [&](const std::optional<std::string>& value) {
    const std::size_t part = value ? std::hash<std::string>{}(*value) : 0x9e3779b97f4a7c15ULL;
    hash = hash * 31 + part;
  };
  if (key_indices_.empty()) {
    for (const auto& value : row.values) mix(value);
  } else {
    for (const auto index : key_indices_) mix(row.values[index]);
  }
  return hash;
}

void RowPlan::plan_user_statements(const WriteTarget& config) {
  mode_ = WriteMode::statement;
  idempotent_ = config.idempotent;
  if (config.statement.empty() == config.statements.empty()) {
    throw sdk::ConfigError("/statement", "statement mode needs either statement or statements (with statement_field)");
  }
  if (!config.statements.empty() && config.statement_field.empty()) {
    throw sdk::ConfigError("/statement_field", "statements need statement_field: the field that chooses one");
  }
  if (!config.columns.empty()) throw sdk::ConfigError("/columns", "statement mode names its fields in the statement");
  std::vector<std::pair<std::string, std::string>> texts;
  if (!config.statement.empty()) texts.emplace_back("", config.statement);
  for (const auto& [value, text] : config.statements) texts.emplace_back(value, text);
  for (const auto& [value, text] : texts) {
    NamedStatement named;
    try {
      named = parse_named_parameters(text);
    } catch (const std::invalid_argument& e) {
      throw sdk::ConfigError(value.empty() ? "/statement" : "/statements/" + value, e.what());
    }
    WriteStatement statement;
    statement.sql = named.sql;
    for (const auto& name : named.fields) {
      // A constant's name is its parameter's name; every other name is a record field.
      auto at = std::find(columns_.begin(), columns_.end(), name);
      if (at == columns_.end()) {
        add_column(name, name, config);
        at = columns_.end() - 1;
      }
      statement.parameters.push_back(static_cast<std::size_t>(at - columns_.begin()));
    }
    if (!value.empty()) statement_for_value_[value] = statements_.size();
    statements_.push_back(std::move(statement));
  }
  statement_field_ = config.statement_field;
  // Optional: the fields whose values keep one key's rows in order on one connection (without
  // them, all of a row's values are its key: two changes of one row could race).
  for (std::size_t i = 0; i < config.key_columns.size(); ++i) {
    const auto at = std::find(columns_.begin(), columns_.end(), config.key_columns[i]);
    if (at == columns_.end()) {
      throw sdk::ConfigError("/key_columns/" + std::to_string(i),
                             "\"" + config.key_columns[i] + "\" is not a parameter of any statement");
    }
    key_indices_.push_back(static_cast<std::size_t>(at - columns_.begin()));
  }
}

void RowPlan::plan_statement(const WriteTarget& config) {
  auto mapped = [&](const std::vector<std::string>& names, const char* key) {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (std::find(columns_.begin(), columns_.end(), names[i]) == columns_.end()) {
        throw sdk::ConfigError(std::string("/") + key + "/" + std::to_string(i),
                               "column \"" + names[i] + "\" is not one of the mapped columns (see columns)");
      }
    }
  };
  std::vector<std::string> keys;
  std::vector<std::string> updates;
  if (config.mode == "insert") {
    mode_ = WriteMode::insert;
    // Optional here: rows with one key keep their order (the first of two duplicates is the
    // one stored, the later one rejected 23505), instead of racing on two connections.
    mapped(config.key_columns, "key_columns");
    keys = config.key_columns;
  } else if (config.mode == "upsert") {
    mode_ = WriteMode::upsert;
    if (config.conflict_columns.empty()) throw sdk::ConfigError("/conflict_columns", "upsert needs the conflict columns");
    mapped(config.conflict_columns, "conflict_columns");
    keys = config.conflict_columns;
    if (config.update_columns) {
      mapped(*config.update_columns, "update_columns");
      updates = *config.update_columns;
    } else {
      for (const auto& column : columns_) {
        if (std::find(keys.begin(), keys.end(), column) == keys.end()) updates.push_back(column);
      }
    }
  } else {
    mode_ = config.mode == "update" ? WriteMode::update : WriteMode::remove;
    if (config.key_columns.empty()) throw sdk::ConfigError("/key_columns", config.mode + " needs the key columns");
    mapped(config.key_columns, "key_columns");
    keys = config.key_columns;
    if (mode_ == WriteMode::update && keys.size() == columns_.size()) {
      throw sdk::ConfigError("/columns", "update needs a mapped column besides the key columns, to set");
    }
  }
  if (!config.where.empty() && mode_ != WriteMode::upsert) throw sdk::ConfigError("/where", "where is for upsert");
  if (mode_ == WriteMode::upsert) {
    conflict_columns_ = keys;
    update_columns_ = updates;
    guard_ = config.where;
  }
  statements_.push_back(
      write_statement(mode_, schema_, table_, columns_, mode_ == WriteMode::insert ? std::vector<std::string>{} : keys,
                      updates, config.where, casts_));
  for (const auto& key : keys) {
    key_indices_.push_back(static_cast<std::size_t>(std::find(columns_.begin(), columns_.end(), key) - columns_.begin()));
  }
}

void RowPlan::plan_changes(const WriteTarget& config) {
  mode_ = WriteMode::changes;
  idempotent_ = true;
  if (config.table.empty()) throw sdk::ConfigError("/table", "give the table to write to (mode changes)");
  if (config.columns.empty()) {
    throw sdk::ConfigError("/columns", "map the change records' fields to the table's columns, e.g. {\"id\": \"id\"}");
  }
  if (config.key_columns.empty()) {
    throw sdk::ConfigError("/key_columns", "changes needs the key columns: the target's primary key (or a unique key)");
  }
  if (!config.where.empty()) throw sdk::ConfigError("/where", "where is for upsert");
  for (std::size_t i = 0; i < config.key_columns.size(); ++i) {
    if (std::find(columns_.begin(), columns_.end(), config.key_columns[i]) == columns_.end()) {
      throw sdk::ConfigError("/key_columns/" + std::to_string(i),
                             "column \"" + config.key_columns[i] + "\" is not one of the mapped columns (see columns)");
    }
  }
  mapped_ = sources_.size();
  std::vector<std::string> fields;
  for (const auto& source : sources_) fields.push_back(source.field);
  // Hidden sources after the mapped ones: the _unchanged list, and each key's old value.
  unchanged_source_ = sources_.size();
  add_column("_unchanged", "_unchanged", WriteTarget{});
  std::vector<std::size_t> old_keys;
  for (const auto& key : config.key_columns) {
    const auto at = static_cast<std::size_t>(std::find(columns_.begin(), columns_.end(), key) - columns_.begin());
    key_indices_.push_back(at);
    old_keys.push_back(sources_.size());
    add_column(sources_[at].field, "_old." + key, WriteTarget{}).key_of = 1 + at;
    casts_.back() = casts_[at];  // compared with the key column: its cast too
  }
  ChangeStatements planned =
      change_statements(schema_, table_, std::vector<std::string>(columns_.begin(), columns_.begin() + mapped_), fields,
                        config.key_columns, unchanged_source_, old_keys, casts_);
  statements_ = {std::move(planned.upsert), std::move(planned.update_keeping), std::move(planned.move),
                 std::move(planned.remove), std::move(planned.truncate)};
  conflict_columns_ = config.key_columns;
}

namespace {

/// A JSON value as a parameter's text (nullopt: NULL), as the sink binds values.
std::optional<std::string> json_parameter(const nlohmann::json& value) {
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

}  // namespace

std::optional<sdk::Outcome> RowPlan::fill_change(const sdk::Record& record, Row& row) const {
  const std::optional<std::string> op = record.text("_op");
  std::size_t statement = kChangeUpsert;
  if (!op) {
    return sdk::Outcome::rejected("unknown_op", "the record has no field \"_op\" (mode changes applies the change records "
                                                "of postgres-cdc: _op insert, read, update, delete or truncate)");
  }
  if (*op == "insert" || *op == "read" || *op == "update") {
    statement = kChangeUpsert;
  } else if (*op == "delete") {
    statement = kChangeRemove;
  } else if (*op == "truncate") {
    statement = kChangeTruncate;
  } else {
    return sdk::Outcome::rejected("unknown_op", "field \"_op\" is \"" + *op +
                                                    "\"; mode changes knows insert, read, update, delete and truncate");
  }
  row.values.assign(sources_.size(), std::nullopt);
  if (statement == kChangeTruncate) {
    row.statement = static_cast<std::uint16_t>(statement);
    row.barrier = true;
    row.key_hash = 0;
    return std::nullopt;
  }
  // Which fields the update did not send (TOAST values it did not change), and the old key.
  std::vector<std::string> unchanged;
  nlohmann::json old;
  try {
    if (const sdk::Field* listed = record.find("_unchanged"); listed != nullptr && !listed->value.is_null()) {
      row.values[unchanged_source_] = listed->value.text();
      for (const auto& name : nlohmann::json::parse(listed->value.text().value_or("[]"))) unchanged.push_back(name.get<std::string>());
    }
    if (const sdk::Field* found = record.find("_old"); found != nullptr && !found->value.is_null() && statement == kChangeUpsert) {
      old = nlohmann::json::parse(found->value.text().value_or("{}"));
      if (!old.is_object()) throw std::invalid_argument("not an object");
    }
  } catch (const std::exception&) {
    return sdk::Outcome::rejected("bad_change", "field \"_unchanged\" must be a JSON array of field names and \"_old\" a "
                                                "JSON object of the old key's fields");
  }
  std::string scratch;
  for (std::size_t i = 0; i < mapped_; ++i) {
    const Source& source = sources_[i];
    if (std::find(unchanged.begin(), unchanged.end(), source.field) != unchanged.end()) continue;  // kept as stored
    const bool key = std::find(key_indices_.begin(), key_indices_.end(), i) != key_indices_.end();
    // A delete carries the old key (or with replica identity full the old row): only the key is needed.
    const bool needed = statement == kChangeUpsert || key;
    const std::string* text = nullptr;
    if (auto refusal = value_text(record, i, needed, scratch, text)) return refusal;
    if (text) row.values[i] = *text;
  }
  bool moved = false;
  for (std::size_t i = unchanged_source_ + 1; i < sources_.size(); ++i) {
    const std::size_t key = sources_[i].key_of - 1;
    const auto member = old.is_object() ? old.find(sources_[key].field) : old.end();
    row.values[i] = old.is_object() && member != old.end() ? json_parameter(*member) : row.values[key];
    moved = moved || row.values[i] != row.values[key];
  }
  if (statement == kChangeUpsert && !unchanged.empty()) {
    statement = kChangeUpdateKeeping;
  } else if (statement == kChangeUpsert && moved) {
    statement = kChangeMove;
  }
  row.statement = static_cast<std::uint16_t>(statement);
  // A change that moves a row between keys is ordered against every key's changes (rare: a
  // primary key updated), as a truncate is; the others keep their order per key.
  row.barrier = moved;
  std::size_t hash = 0;
  for (std::size_t i = unchanged_source_ + 1; i < sources_.size(); ++i) {
    const auto& value = row.values[i];
    hash = hash * 31 + (value ? std::hash<std::string>{}(*value) : 0x9e3779b97f4a7c15ULL);
  }
  row.key_hash = hash;
  return std::nullopt;
}

}  // namespace etl::plugins::postgres
