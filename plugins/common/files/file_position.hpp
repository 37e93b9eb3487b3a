#pragma once
// The position a file source commits (sdk::Resumable): the byte offset and line number after the
// last record it yielded, with what identifies the file, so that a run resumes only in the same
// file (one that grew is the same file; one that shrank or whose first bytes differ is not).

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "etl/sdk/plugin.hpp"

namespace etl::plugins::files {

/// What identifies a file's content: its size, and a hash of its first bytes (at most
/// kHeadBytes). Both of the file as stored (a gzip file's compressed bytes).
struct FileIdentity {
  static constexpr std::uint64_t kHeadBytes = 4096;
  std::uint64_t size = 0;
  std::uint64_t head_bytes = 0;  ///< how many first bytes the hash covers: min(size, kHeadBytes)
  std::string head_hash;         ///< FNV-1a 64 of those bytes, 16 hex digits

  /// The identity of the file at `path` now; throws sdk::PluginError naming it when it cannot be read.
  static FileIdentity of(const std::string& path);
  /// The identity of its first `head_bytes` bytes only (to compare with one taken when it was smaller).
  static FileIdentity of(const std::string& path, std::uint64_t head_bytes);
};

struct FilePosition {
  std::uint64_t offset = 0;  ///< bytes of the (decompressed) input consumed
  std::uint64_t line = 0;    ///< physical lines consumed
  FileIdentity identity;     ///< the file when the position was taken

  /// {"offset":..,"line":..,"size":..,"head_bytes":..,"head_hash":".."}
  [[nodiscard]] std::string to_json_text() const;
  /// Parses to_json_text()'s output; throws sdk::PluginError naming `file` when it does not.
  static FilePosition from_json_text(const std::string& text, const std::string& file);
};

/// Whether `path` is a regular file (not a pipe, a device or stdin): only those are resumed.
bool is_regular_file(const std::string& path);

/// Why the file at `path` is not the one `position` was taken in (it shrank, its first bytes
/// differ), or nothing when it is the same file, possibly grown.
std::optional<std::string> changed_since(const std::string& path, const FilePosition& position);

/// Whether `path` is a pattern (has * ? or [) rather than a file name.
bool is_pattern(const std::string& path);

/// The regular files `pattern` matches, in name order (none: empty). Throws sdk::PluginError
/// when the folder cannot be read.
std::vector<std::string> matching_files(const std::string& pattern);

/// A pattern's position: each matching file's FilePosition, as {"files": {PATH: {...}}}. The
/// files are read one after the other in name order; what this run reached replaces what was
/// committed, and files that no longer match drop out. Not thread-safe.
class PatternPositions {
 public:
  /// The files this run reads.
  void set_files(std::vector<std::string> paths);
  /// More files to read after those (follow: files that appeared during the run).
  void add_files(const std::vector<std::string>& paths);
  [[nodiscard]] const std::vector<std::string>& files() const noexcept { return paths_; }
  /// The committed position (a text() of an earlier run); throws sdk::PluginError naming `pattern`.
  void resume_from(const std::string& text, const std::string& pattern);
  /// The committed position of files()[index], if it has one.
  [[nodiscard]] std::optional<FilePosition> committed(std::size_t index) const;
  /// files()[index] was opened: its identity (none for a file that cannot be resumed).
  void opened(std::size_t index, std::optional<FileIdentity> identity);
  /// The input of files()[index] is consumed up to `offset`, the end of line `line`.
  void reached(std::size_t index, std::uint64_t offset, std::uint64_t line);
  /// The position now; empty while no file has one.
  [[nodiscard]] std::string text() const;

 private:
  struct Reached {
    std::uint64_t offset = 0;
    std::uint64_t line = 0;
  };
  std::vector<std::string> paths_;
  std::map<std::string, FilePosition> committed_;
  std::vector<std::optional<Reached>> reached_;
  std::vector<std::optional<FileIdentity>> identities_;
};

/// follow: the files a pattern matches that were not taken yet, each taken once it has stopped
/// changing (the same size and modification time at two looks in a row), so that a file still
/// being written is not read half-way. Files taken are never offered again. Not thread-safe.
class FolderWatch {
 public:
  FolderWatch(std::string pattern, const std::vector<std::string>& taken);
  /// Looks once: the files that settled since the last look, in name order; they count as taken.
  /// Throws sdk::PluginError when the folder cannot be read.
  std::vector<std::string> settled_new_files();

 private:
  struct Seen {
    std::uint64_t size = 0;
    std::int64_t modified_ns = 0;
    bool operator==(const Seen&) const = default;
  };
  std::string pattern_;
  std::set<std::string> taken_;
  std::map<std::string, Seen> seen_;  // at the last look, not taken yet
};

/// What a file source does with the position sdk::Resumable::resume_from() gives it, for the
/// file or pattern `path`: a pattern's goes to `pattern` (when `path` is one), a file's to
/// `single`; stdin ("-") is read whole, saying so. Throws sdk::PluginError for a position the
/// source did not write.
void take_committed(std::string_view position, const std::string& path, PatternPositions* pattern,
                    std::optional<FilePosition>& single, sdk::Context& context);

/// The committed `position` to go on from in the file at `path` (`shown` in messages), or
/// nothing: there was none, the file is not a regular one (a pipe: read whole, with a warning),
/// or it changed since and `restart` is set (read from its beginning, with a warning). A changed
/// file without `restart` throws sdk::PluginError naming what changed.
std::optional<FilePosition> usable_position(const std::string& path, const std::string& shown,
                                            std::optional<FilePosition> position, bool restart, sdk::Context& context);

}  // namespace etl::plugins::files
