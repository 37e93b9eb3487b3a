#include "file_position.hpp"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "etl/sdk/json.hpp"
#include "etl/sdk/plugin.hpp"

namespace etl::plugins::files {

namespace {

std::string hex64(std::uint64_t value) {
  static const char digits[] = "0123456789abcdef";
  std::string text(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) text[static_cast<std::size_t>(i)] = digits[value & 0xf];
  return text;
}

}  // namespace

FileIdentity FileIdentity::of(const std::string& path) { return of(path, kHeadBytes); }

FileIdentity FileIdentity::of(const std::string& path, std::uint64_t head_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw sdk::PluginError(path + ": cannot open: " + std::strerror(errno));
  struct stat facts {};
  if (::fstat(fd, &facts) != 0) {
    const int error = errno;
    ::close(fd);
    throw sdk::PluginError(path + ": cannot stat: " + std::strerror(error));
  }
  FileIdentity identity;
  identity.size = static_cast<std::uint64_t>(facts.st_size);
  identity.head_bytes = std::min({head_bytes, identity.size, kHeadBytes});
  char buffer[kHeadBytes];
  std::uint64_t got = 0;
  while (got < identity.head_bytes) {
    const ssize_t n = ::pread(fd, buffer + got, identity.head_bytes - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  identity.head_bytes = got;
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64: stable across builds and machines
  for (std::uint64_t i = 0; i < got; ++i) {
    hash ^= static_cast<unsigned char>(buffer[i]);
    hash *= 0x100000001b3ULL;
  }
  identity.head_hash = hex64(hash);
  return identity;
}

std::string FilePosition::to_json_text() const {
  return nlohmann::json{{"offset", offset},
                        {"line", line},
                        {"size", identity.size},
                        {"head_bytes", identity.head_bytes},
                        {"head_hash", identity.head_hash}}
      .dump();
}

FilePosition FilePosition::from_json_text(const std::string& text, const std::string& file) {
  const auto document = nlohmann::json::parse(text, nullptr, false);
  FilePosition position;
  try {
    if (document.is_discarded() || !document.is_object()) throw std::runtime_error("not a JSON object");
    position.offset = document.at("offset").get<std::uint64_t>();
    position.line = document.at("line").get<std::uint64_t>();
    position.identity.size = document.at("size").get<std::uint64_t>();
    position.identity.head_bytes = document.at("head_bytes").get<std::uint64_t>();
    position.identity.head_hash = document.at("head_hash").get<std::string>();
  } catch (const std::exception& e) {
    throw sdk::PluginError(file + ": the committed position " + text + " is not one this source wrote (" + e.what() +
                           "); `etl-host state reset PIPELINE` to start over");
  }
  return position;
}

bool is_regular_file(const std::string& path) {
  struct stat facts {};
  return ::stat(path.c_str(), &facts) == 0 && S_ISREG(facts.st_mode);
}

std::optional<std::string> changed_since(const std::string& path, const FilePosition& position) {
  const FileIdentity now = FileIdentity::of(path, position.identity.head_bytes);
  if (now.size < position.identity.size) {
    return "it is " + std::to_string(now.size) + " bytes now, smaller than the " + std::to_string(position.identity.size) +
           " bytes it had when the position was committed";
  }
  if (now.head_bytes != position.identity.head_bytes || now.head_hash != position.identity.head_hash) {
    return "its first " + std::to_string(position.identity.head_bytes) + " bytes differ from the file's when the position was committed";
  }
  return std::nullopt;
}

bool is_pattern(const std::string& path) { return path.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> matching_files(const std::string& pattern) {
  glob_t found{};
  std::vector<std::string> paths;
  const int status = ::glob(pattern.c_str(), GLOB_MARK, nullptr, &found);
  if (status == 0) {
    for (std::size_t i = 0; i < found.gl_pathc; ++i) {
      const std::string path = found.gl_pathv[i];
      if (!path.ends_with('/') && is_regular_file(path)) paths.push_back(path);
    }
  }
  ::globfree(&found);
  if (status != 0 && status != GLOB_NOMATCH) throw sdk::PluginError(pattern + ": cannot list the files it matches");
  return paths;  // glob sorts them
}

void PatternPositions::set_files(std::vector<std::string> paths) {
  paths_ = std::move(paths);
  reached_.assign(paths_.size(), std::nullopt);
  identities_.assign(paths_.size(), std::nullopt);
}

void PatternPositions::add_files(const std::vector<std::string>& paths) {
  paths_.insert(paths_.end(), paths.begin(), paths.end());
  reached_.resize(paths_.size());
  identities_.resize(paths_.size());
}

FolderWatch::FolderWatch(std::string pattern, const std::vector<std::string>& taken)
    : pattern_(std::move(pattern)), taken_(taken.begin(), taken.end()) {}

std::vector<std::string> FolderWatch::settled_new_files() {
  std::vector<std::string> settled;
  std::map<std::string, Seen> seen;
  for (auto& path : matching_files(pattern_)) {
    if (taken_.contains(path)) continue;
    struct stat facts {};
    if (::stat(path.c_str(), &facts) != 0) continue;  // gone since it was listed
    const Seen now{static_cast<std::uint64_t>(facts.st_size),
                   static_cast<std::int64_t>(facts.st_mtim.tv_sec) * 1000000000 + facts.st_mtim.tv_nsec};
    if (const auto before = seen_.find(path); before != seen_.end() && before->second == now) {
      taken_.insert(path);
      settled.push_back(std::move(path));
    } else {
      seen.emplace(std::move(path), now);
    }
  }
  seen_ = std::move(seen);
  return settled;  // matching_files() sorts them
}

void PatternPositions::resume_from(const std::string& text, const std::string& pattern) {
  const auto document = nlohmann::json::parse(text, nullptr, false);
  if (!document.is_object() || !document.contains("files") || !document.at("files").is_object()) {
    throw sdk::PluginError(pattern + ": the committed position is not a pattern's (" + text +
                           "): was the path a single file before? `etl-host state reset PIPELINE` to start over");
  }
  for (const auto& [path, at] : document.at("files").items()) committed_[path] = FilePosition::from_json_text(at.dump(), path);
}

std::optional<FilePosition> PatternPositions::committed(std::size_t index) const {
  const auto found = committed_.find(paths_.at(index));
  if (found == committed_.end()) return std::nullopt;
  return found->second;
}

void PatternPositions::opened(std::size_t index, std::optional<FileIdentity> identity) { identities_.at(index) = std::move(identity); }

void PatternPositions::reached(std::size_t index, std::uint64_t offset, std::uint64_t line) {
  reached_.at(index) = Reached{offset, line};
}

std::string PatternPositions::text() const {
  nlohmann::json positions = nlohmann::json::object();
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    if (reached_[i] && identities_[i]) {
      FilePosition position;
      position.offset = reached_[i]->offset;
      position.line = reached_[i]->line;
      position.identity = *identities_[i];
      positions[paths_[i]] = nlohmann::json::parse(position.to_json_text());
    } else if (const auto found = committed_.find(paths_[i]); found != committed_.end()) {
      positions[paths_[i]] = nlohmann::json::parse(found->second.to_json_text());
    }
  }
  if (positions.empty()) return {};
  return nlohmann::json{{"files", positions}}.dump();
}

void take_committed(std::string_view position, const std::string& path, PatternPositions* pattern,
                    std::optional<FilePosition>& single, sdk::Context& context) {
  if (position.empty()) return;
  if (path == "-") {
    context.log(sdk::LogLevel::warning, "stdin cannot be resumed: it is read from its beginning");
    return;
  }
  if (pattern != nullptr) {
    pattern->resume_from(std::string(position), path);
    return;
  }
  single = FilePosition::from_json_text(std::string(position), path);
}

std::optional<FilePosition> usable_position(const std::string& path, const std::string& shown,
                                            std::optional<FilePosition> position, bool restart, sdk::Context& context) {
  if (!position) return std::nullopt;
  if (path == "-" || !is_regular_file(path)) {
    context.log(sdk::LogLevel::warning, shown + " is not a regular file and cannot be resumed: read from its beginning");
    return std::nullopt;
  }
  const auto changed = changed_since(path, *position);
  if (!changed) return position;
  if (!restart) {
    throw sdk::PluginError(shown + ": the file changed since the committed position (" + *changed +
                           "): it is not resumed. Set on_changed: restart to read a changed file from its beginning, "
                           "or `etl-host state reset PIPELINE`");
  }
  context.log(sdk::LogLevel::warning,
              shown + ": the file changed since the committed position (" + *changed + "): read from its beginning (on_changed: restart)");
  return std::nullopt;
}

}  // namespace etl::plugins::files
