#pragma once
// Helpers shared by the bundled reporters: buffered output files and status filters.

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#include "etl/sdk.hpp"

namespace etl::plugins::reporting {

/// A buffered output (a file, or stdout) that reports write errors with its name.
class Output {
 public:
  /// Opens `path` for writing, creating missing parent folders.
  static Output file(const std::string& path) {
    std::error_code ec;
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) throw sdk::PluginError("cannot create folder " + parent.string() + ": " + ec.message());
    std::FILE* handle = std::fopen(path.c_str(), "wb");
    if (handle == nullptr) {
      throw sdk::PluginError("cannot open " + path + " for writing: " + std::strerror(errno));
    }
    return Output(handle, path, true);
  }
  static Output standard_output() { return Output(stdout, "stdout", false); }

  Output(Output&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)), name_(std::move(other.name_)), owned_(other.owned_) {
    buffer_.swap(other.buffer_);
  }
  Output& operator=(Output&&) = delete;
  ~Output() {
    if (handle_ != nullptr && owned_) std::fclose(handle_);
  }

  void write(std::string_view text) {
    buffer_.append(text);
    if (buffer_.size() >= kFlushAt) flush_buffer();
  }

  /// Writes out what is buffered; throws on a write error (disk full, closed pipe).
  void flush() {
    flush_buffer();
    if (std::fflush(handle_) != 0) fail();
  }

  /// Flushes and closes; throws on error.
  void close() {
    flush();
    if (owned_) {
      std::FILE* handle = std::exchange(handle_, nullptr);
      if (std::fclose(handle) != 0) fail();
    }
  }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  static constexpr std::size_t kFlushAt = 64 * 1024;

  Output(std::FILE* handle, std::string name, bool owned)
      : handle_(handle), name_(std::move(name)), owned_(owned) {
    buffer_.reserve(kFlushAt + 4096);
  }

  void flush_buffer() {
    if (buffer_.empty()) return;
    if (std::fwrite(buffer_.data(), 1, buffer_.size(), handle_) != buffer_.size()) fail();
    buffer_.clear();
  }

  [[noreturn]] void fail() const {
    throw sdk::PluginError("cannot write to " + name_ + ": " + std::strerror(errno));
  }

  std::FILE* handle_;
  std::string name_;
  bool owned_;
  std::string buffer_;
};

/// The statuses a reporter keeps, from a config array such as ["rejected", "failed"].
class StatusFilter {
 public:
  explicit StatusFilter(const nlohmann::json& statuses) {
    for (const auto& status : statuses) keep_.insert(status.get<std::string>());
  }
  [[nodiscard]] bool keeps(sdk::Status status) const {
    return keep_.count(std::string(sdk::to_string(status))) != 0;
  }

 private:
  std::set<std::string> keep_;
};

/// JSON Schema fragment for a "statuses" filter option.
inline constexpr const char* kStatusesSchema =
    R"({"type": "array", "items": {"type": "string", "enum": ["ok", "rejected", "failed"]},
        "default": ["ok", "rejected", "failed"],
        "description": "Keep only records with these statuses (e.g. [\"rejected\", \"failed\"] for a reject file)."})";

}  // namespace etl::plugins::reporting
