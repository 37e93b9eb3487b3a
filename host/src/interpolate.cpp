#include "interpolate.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace etl::host {

std::optional<std::string> environment_variable(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

namespace {

bool is_variable_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::optional<std::string> read_secret_file(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read file '" + path + "'";
    return std::nullopt;
  }
  std::ostringstream content;
  content << in.rdbuf();
  std::string value = content.str();
  // Files written by editors and `echo` end with a newline that is not part of the secret.
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (!value.empty() && value.back() == '\r') value.pop_back();
  return value;
}

}  // namespace

Interpolated interpolate(std::string_view text, const VariableLookup& lookup) {
  Interpolated result;
  result.value.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const char c = text[pos];
    if (c != '$') {
      result.value.push_back(c);
      ++pos;
      continue;
    }
    if (pos + 1 < text.size() && text[pos + 1] == '$') {
      result.value.push_back('$');
      pos += 2;
      continue;
    }
    if (pos + 1 >= text.size() || text[pos + 1] != '{') {
      result.value.push_back('$');
      ++pos;
      continue;
    }
    const std::size_t close = text.find('}', pos + 2);
    if (close == std::string_view::npos) {
      result.errors.push_back("unterminated '${' at offset " + std::to_string(pos));
      return result;
    }
    result.substituted = true;
    const std::string_view body = text.substr(pos + 2, close - pos - 2);
    pos = close + 1;

    if (body.starts_with("file:")) {
      std::string error;
      const std::string path(body.substr(5));
      if (auto content = read_secret_file(path, error)) {
        result.value += *content;
        result.from_file = true;
      } else {
        result.errors.push_back("${file:" + path + "}: " + error);
      }
      continue;
    }

    std::string_view name = body;
    std::optional<std::string_view> fallback;
    std::optional<std::string_view> required_message;
    if (const auto op = body.find(':'); op != std::string_view::npos) {
      name = body.substr(0, op);
      const std::string_view rest = body.substr(op + 1);
      if (rest.starts_with("-")) {
        fallback = rest.substr(1);
      } else if (rest.starts_with("?")) {
        required_message = rest.substr(1);
      } else {
        result.errors.push_back("'${" + std::string(body) +
                                "}': after ':' expected '-' (default) or '?' (required)");
        continue;
      }
    }
    if (!is_variable_name(name)) {
      result.errors.push_back("'${" + std::string(body) + "}': '" + std::string(name) +
                              "' is not a valid variable name");
      continue;
    }
    const std::string variable(name);
    result.variables.push_back(variable);
    std::optional<std::string> value = lookup(variable);
    if (!value) {
      // The _FILE convention: DB_PASS_FILE=/run/secrets/db_pass supplies DB_PASS.
      if (auto file = lookup(variable + "_FILE")) {
        std::string error;
        value = read_secret_file(*file, error);
        if (!value) {
          result.errors.push_back("variable " + variable + "_FILE: " + error);
          continue;
        }
        result.from_file = true;
      }
    }
    const bool missing = !value || (value->empty() && (fallback || required_message));
    if (!missing) {
      result.value += *value;
    } else if (fallback) {
      result.value += *fallback;
    } else if (required_message) {
      result.errors.push_back("variable " + variable + " is not set: " +
                              (required_message->empty() ? std::string("it is required")
                                                         : std::string(*required_message)));
    } else {
      result.errors.push_back("variable " + variable + " is not set");
    }
  }
  return result;
}

}  // namespace etl::host
