#pragma once
// Helpers shared by the bundled reporters: buffered output files and status filters.

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#include "etl/sdk.hpp"
#include "etl/sdk/json.hpp"

namespace etl::plugins::reporting {

/// A buffered output (a file, or stdout) that reports write errors with its name.
///
/// What reaches the file ends at a record boundary: callers write whole records, and the
/// buffer goes out with one write(2) loop, never through stdio's own buffer. A run that stops,
/// fails or is killed between two writes leaves only whole records (CSV and JSON Lines stay
/// parseable); one killed (kill -9) during a write may leave its last record cut, since the
/// kernel ends a write to a file between two pages when the process dies: readers drop an
/// incomplete last line (scripts/unreported-rows does).
///
/// A file is written under "<path>.partial" and renamed to its name by close(): a run that
/// dies leaves the previous report in place. The .partial file is locked (flock) for the run,
/// so a second run writing the same report is refused instead of mixing rows into it.
class Output {
 public:
  /// Opens `path` for writing, creating missing parent folders.
  static Output file(const std::string& path) {
    std::error_code ec;
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) throw sdk::PluginError("cannot create folder " + parent.string() + ": " + ec.message());
    const std::string partial = path + ".partial";
    // Not O_TRUNC: a file another run holds must not be emptied before its lock is tested.
    const int fd = ::open(partial.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw sdk::PluginError("cannot open " + partial + " for writing: " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      ::close(fd);
      if (error == EWOULDBLOCK) {
        throw sdk::PluginError("report " + path + " is being written by another run (" + partial +
                               " is locked); give each run its own report path");
      }
      throw sdk::PluginError("cannot lock " + partial + ": " + std::strerror(error));
    }
    if (::ftruncate(fd, 0) != 0) {
      const int error = errno;
      ::close(fd);
      throw sdk::PluginError("cannot empty " + partial + ": " + std::strerror(error));
    }
    return Output(fd, path, partial);
  }
  static Output standard_output() { return Output(STDOUT_FILENO, "stdout", std::string()); }

  Output(Output&& other) noexcept
      : fd_(std::exchange(other.fd_, -1)), name_(std::move(other.name_)), partial_(std::move(other.partial_)) {
    buffer_.swap(other.buffer_);
  }
  Output& operator=(Output&&) = delete;
  ~Output() {
    // Not closed properly (the run failed in between): the .partial file stays as it is.
    if (fd_ >= 0 && !partial_.empty()) ::close(fd_);
  }

  /// Appends `text`, which must end at a record boundary.
  void write(std::string_view text) {
    buffer_.append(text);
    if (buffer_.size() >= kFlushAt) flush();
  }

  /// Writes out what is buffered; throws on a write error (disk full, closed pipe).
  void flush() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail();
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  /// Flushes, and syncs a file to disk (sdk::FlushesReports: what is reported survives a crash).
  void sync() {
    flush();
    if (!partial_.empty() && ::fdatasync(fd_) != 0) fail();
  }

  /// Flushes, closes and gives the file its name; throws on error.
  void close() {
    flush();
    if (partial_.empty()) return;
    const int fd = std::exchange(fd_, -1);
    // Renamed while still locked, so no other run can take the .partial name in between.
    if (::fsync(fd) != 0 || std::rename(partial_.c_str(), name_.c_str()) != 0) {
      const int error = errno;
      ::close(fd);
      errno = error;
      fail();
    }
    if (::close(fd) != 0) fail();
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  static constexpr std::size_t kFlushAt = 64 * 1024;

  Output(int fd, std::string name, std::string partial)
      : fd_(fd), name_(std::move(name)), partial_(std::move(partial)) {
    buffer_.reserve(kFlushAt + 4096);
  }

  [[noreturn]] void fail() const {
    throw sdk::PluginError("cannot write to " + (partial_.empty() ? name_ : partial_) + ": " + std::strerror(errno));
  }

  int fd_;
  std::string name_;
  std::string partial_;  // empty for stdout
  std::string buffer_;
};

/// The statuses a reporter keeps, from a config array such as ["rejected", "failed"].
class StatusFilter {
 public:
  StatusFilter() : keep_{"ok", "dropped", "rejected", "failed"} {}
  explicit StatusFilter(const nlohmann::json& statuses) {
    for (const auto& status : statuses) keep_.insert(status.get<std::string>());
  }
  explicit StatusFilter(const std::vector<std::string>& statuses) : keep_(statuses.begin(), statuses.end()) {}
  /// By the outcome's report word: ok, dropped (a transform filtered it out), rejected, failed.
  [[nodiscard]] bool keeps(const sdk::Outcome& outcome) const {
    return keep_.count(std::string(outcome.status_word())) != 0;
  }

 private:
  std::set<std::string> keep_;
};

/// Declares the "path" of a reporter that writes a file: required, and an output file (the
/// host refuses two stages writing one).
template <class Config>
void declare_output_path(sdk::ConfigMap<Config>& map, std::string Config::*member) {
  map.key("path", member, "File to write (as PATH.partial until the run ends); missing folders are created.")
      .required()
      .min_length(1)
      .schema(R"({"output_file": true})");
}

/// Declares the "statuses" filter option of a reporter's ConfigMap.
template <class Config>
void declare_statuses(sdk::ConfigMap<Config>& map, std::vector<std::string> Config::*member) {
  map.key("statuses", member,
          "Keep only records with these statuses (e.g. [\"rejected\", \"failed\"] for a reject file); dropped: "
          "records a transform filtered out (not stored).")
      .schema(R"({"items": {"type": "string", "enum": ["ok", "dropped", "rejected", "failed"]}})");
}

/// The detail fields of an outcome as one compact JSON object text, or empty when there are none.
inline std::string detail_text(const sdk::Outcome& outcome) {
  if (outcome.detail.empty()) return {};
  return sdk::to_json_object(outcome.detail).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace etl::plugins::reporting
