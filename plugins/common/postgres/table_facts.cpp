#include "postgres/table_facts.hpp"

#include <regex>

namespace etl::plugins::postgres {

std::optional<SimpleCheck> parse_simple_check(const std::string& definition, const std::vector<std::string>& columns) {
  static const std::regex kForm(
      R"(^CHECK \(\(("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) (<=|>=|<>|<|>|=) \(?(-?[0-9]+(?:\.[0-9]+)?)\)?(?:::[a-z ]+)?\)\)$)");
  std::smatch match;
  if (!std::regex_match(definition, match, kForm)) return std::nullopt;
  std::string name = match[1];
  if (name.front() == '"') {
    std::string unquoted;
    for (std::size_t i = 1; i + 1 < name.size(); ++i) {
      unquoted += name[i];
      if (name[i] == '"') ++i;  // "" stands for "
    }
    name = unquoted;
  }
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (columns[i] == name) return SimpleCheck{i, match[2], std::stod(match[3])};
  }
  return std::nullopt;
}

std::optional<CatalogFacts> facts_from_catalog(const std::vector<CatalogColumn>& columns, const std::vector<CatalogKey>& keys,
                                                      const std::vector<std::string>& check_definitions,
                                                      const std::vector<std::string>& mapped) {
  CatalogFacts out;
  auto index_of = [&](const std::string& name) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < mapped.size(); ++i) {
      if (mapped[i] == name) return i;
    }
    return std::nullopt;
  };
  for (const auto& name : mapped) {
    const CatalogColumn* found = nullptr;
    for (const auto& column : columns) {
      if (column.name == name) found = &column;
    }
    if (found == nullptr) return std::nullopt;
    ColumnFacts facts;
    facts.not_null = found->not_null;
    const std::string& type = found->type_name;
    if (found->type_type == 'd') {
      facts.kind = ValueKind::any;  // a domain's own checks are not guessed
    } else if (type == "int2") {
      facts.kind = ValueKind::int16;
    } else if (type == "int4") {
      facts.kind = ValueKind::int32;
    } else if (type == "int8") {
      facts.kind = ValueKind::int64;
    } else if (type == "numeric") {
      facts.kind = ValueKind::decimal;
      if (found->typmod >= 4) {
        const int precision = ((found->typmod - 4) >> 16) & 0xffff;
        const int scale = static_cast<short>((found->typmod - 4) & 0xffff);
        // (p = s, or a negative scale: not guessed)
        if (precision > scale && scale >= 0) {
          facts.limit = static_cast<std::size_t>(precision - scale);
        } else {
          facts.kind = ValueKind::any;
        }
      }
    } else if (type == "float4" || type == "float8") {
      facts.kind = ValueKind::decimal;
    } else if (type == "date") {
      facts.kind = ValueKind::date;
    } else if (type == "bool") {
      facts.kind = ValueKind::boolean;
    } else if ((type == "varchar" || type == "bpchar") && found->typmod >= 4) {
      facts.kind = ValueKind::text;
      facts.limit = static_cast<std::size_t>(found->typmod - 4);
    }
    out.facts.columns.push_back(facts);
    out.sql_types.push_back(found->sql_type);
  }
  for (const auto& definition : check_definitions) {
    std::optional<SimpleCheck> check = parse_simple_check(definition, mapped);
    if (!check) continue;
    const ValueKind kind = out.facts.columns[check->column].kind;
    const bool numeric = kind == ValueKind::int16 || kind == ValueKind::int32 || kind == ValueKind::int64 || kind == ValueKind::decimal;
    if (numeric) out.facts.checks.push_back(*check);
  }
  for (const auto& key : keys) {
    std::vector<std::size_t> indices;
    for (const auto& name : key.columns) {
      if (const auto index = index_of(name)) indices.push_back(*index);
    }
    if (indices.size() != key.columns.size() || indices.empty()) continue;  // a column not mapped: defaults decide
    out.facts.unique_keys.push_back(std::move(indices));
    out.facts.nulls_equal.push_back(key.nulls_equal);
  }
  return out;
}

}  // namespace etl::plugins::postgres
