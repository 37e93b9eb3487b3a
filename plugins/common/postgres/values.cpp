#include "postgres/values.hpp"

#include <charconv>
#include <limits>
#include <string>

#include "etl/sdk/json.hpp"

namespace etl::plugins::postgres {

sdk::Value value_from_text(Oid type, std::string_view text) {
  switch (type) {
    case kBoolOid: return sdk::Value(text == "t");
    case kInt2Oid:
    case kInt4Oid:
    case kInt8Oid:
    case kOidOid: {
      std::int64_t number = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (error == std::errc() && end == text.data() + text.size()) return sdk::Value(number);
      return sdk::Value(text);
    }
    case kFloat4Oid:
    case kFloat8Oid: {
      if (text == "NaN") return sdk::Value(std::numeric_limits<double>::quiet_NaN());
      if (text == "Infinity") return sdk::Value(std::numeric_limits<double>::infinity());
      if (text == "-Infinity") return sdk::Value(-std::numeric_limits<double>::infinity());
      double number = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
      if (error == std::errc() && end == text.data() + text.size()) return sdk::Value(number);
      return sdk::Value(text);
    }
    case kJsonOid:
    case kJsonbOid: {
      // Scalars (a JSON string or number) become the value they stand for.
      auto parsed = nlohmann::json::parse(text, nullptr, false);
      if (parsed.is_discarded()) return sdk::Value(text);
      return sdk::from_json_value(parsed);
    }
    case kByteaOid: {
      // The hex output format: \x followed by two hex digits per byte.
      if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) return sdk::Value(text);
      std::string raw;
      raw.reserve((text.size() - 2) / 2);
      for (std::size_t i = 2; i + 1 < text.size(); i += 2) {
        unsigned value = 0;
        const auto [end, error] = std::from_chars(text.data() + i, text.data() + i + 2, value, 16);
        if (error != std::errc() || end != text.data() + i + 2) return sdk::Value(text);
        raw.push_back(static_cast<char>(value));
      }
      return sdk::Value::bytes(std::move(raw));
    }
    default: return sdk::Value(text);
  }
}

void set_fields_from_row(const PGresult* result, int row, sdk::Record& record) {
  for (int column = 0; column < PQnfields(result); ++column) {
    const char* name = PQfname(result, column);
    if (PQgetisnull(result, row, column)) {
      record.set(name, sdk::Value());
    } else {
      record.set(name, value_from_text(PQftype(result, column),
                                       std::string_view(PQgetvalue(result, row, column),
                                                        static_cast<std::size_t>(PQgetlength(result, row, column)))));
    }
  }
}

}  // namespace etl::plugins::postgres
