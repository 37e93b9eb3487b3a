#pragma once
// Expansion of ${VAR}, ${VAR:-default}, ${VAR:?message} and ${file:PATH} in pipeline strings.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace etl::host {

/// Looks a variable up; nullopt when it is not set.
using VariableLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// Reads the process environment.
std::optional<std::string> environment_variable(const std::string& name);

struct Interpolated {
  std::string value;
  /// True when the text held at least one ${...} (so the value came from outside the file
  /// and may need converting to the type the schema asks for).
  bool substituted = false;
  /// True when a substitution read a file (${file:...}); such values are treated as secrets.
  bool from_file = false;
  /// Names of the variables used, for error messages.
  std::vector<std::string> variables;
  /// One message per problem (unset variable, bad syntax); empty on success.
  std::vector<std::string> errors;
};

/// Expands the placeholders in `text`. `$$` stands for a literal `$`.
///  ${NAME}            value of NAME; an error when NAME is unset
///  ${NAME:-default}   value of NAME, or `default` when NAME is unset or empty
///  ${NAME:?message}   value of NAME; an error saying `message` when NAME is unset or empty
///  ${file:PATH}       contents of the file PATH, without one trailing newline
/// `NAME_FILE` is honoured for ${NAME}: when NAME is unset and NAME_FILE names a file, the
/// file's contents are used (the convention of container images for secrets).
Interpolated interpolate(std::string_view text, const VariableLookup& lookup);

}  // namespace etl::host
