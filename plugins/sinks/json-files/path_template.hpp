#pragma once
// PathTemplate: a file name built from a record's fields ("task_report_{user_id}_{start}.json"),
// kept inside its folder whatever the fields hold. Pure: tested alone
// (tests/path_template_test.cpp).

#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "etl/sdk.hpp"

namespace etl::plugins::json_files {

class PathTemplate {
 public:
  /// Throws std::invalid_argument for an unclosed brace, an empty name, or a template that
  /// leaves its folder by itself (absolute, or with a ".." part).
  explicit PathTemplate(const std::string& text) {
    std::string literal;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '{') {
        if (i + 1 < text.size() && text[i + 1] == '{') {
          literal += '{';
          ++i;
          continue;
        }
        const std::size_t close = text.find('}', i);
        if (close == std::string::npos) throw std::invalid_argument("unclosed { at character " + std::to_string(i + 1));
        const std::string name = text.substr(i + 1, close - i - 1);
        if (name.empty()) throw std::invalid_argument("empty {} at character " + std::to_string(i + 1));
        parts_.push_back(Part{std::move(literal), name});
        literal.clear();
        i = close;
      } else if (text[i] == '}' && i + 1 < text.size() && text[i + 1] == '}') {
        literal += '}';
        ++i;
      } else {
        literal += text[i];
      }
    }
    tail_ = literal;
    if (text.empty() || text.front() == '/') throw std::invalid_argument("the path must be relative to the folder");
    for (const auto& part : split(text)) {
      if (part == "..") throw std::invalid_argument("the path must not leave the folder (..)");
    }
  }

  /// The path for `record`, relative to the folder; or the reason there is none (a missing
  /// field, or a value that would make the path leave its folder: "/", "..", NUL).
  std::variant<std::string, std::pair<std::string, std::string>> expand(const sdk::Record& record) const {
    std::string path;
    for (const auto& part : parts_) {
      path += part.literal;
      const sdk::Field* field = record.find(part.field);
      if (field == nullptr || field->value.is_null()) {
        return std::pair<std::string, std::string>{"missing_field", "the path needs field \"" + part.field + "\""};
      }
      const std::string value = field->value.text().value_or("");
      if (value.empty() || value == "." || value == ".." || value.find('/') != std::string::npos ||
          value.find('\0') != std::string::npos) {
        return std::pair<std::string, std::string>{
            "path_escape", "field \"" + part.field + "\" is \"" + printable(value) +
                               "\", which would make the path leave its folder or name no file"};
      }
      path += value;
    }
    path += tail_;
    return path;
  }

  /// The fields the template uses, in order.
  std::vector<std::string> fields() const {
    std::vector<std::string> names;
    for (const auto& part : parts_) names.push_back(part.field);
    return names;
  }

 private:
  struct Part {
    std::string literal;  // before the field
    std::string field;
  };

  static std::vector<std::string> split(const std::string& path) {
    std::vector<std::string> parts(1);
    for (const char c : path) {
      if (c == '/') {
        parts.emplace_back();
      } else {
        parts.back() += c;
      }
    }
    return parts;
  }

  static std::string printable(const std::string& value) {
    std::string out;
    for (const char c : value.substr(0, 60)) out += (c == '\0' ? std::string("\\0") : std::string(1, c));
    return out;
  }

  std::vector<Part> parts_;
  std::string tail_;
};

}  // namespace etl::plugins::json_files
