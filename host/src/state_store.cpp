#include "state_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "postgres_state_store.hpp"

namespace etl::host {

using nlohmann::json;

namespace {

/// A pipeline name as a file name: what is not a letter, digit, '.', '_' or '-' becomes '_'
/// (the name itself is kept inside the file and checked when it is read).
std::string file_name_for(const std::string& pipeline) {
  std::string name;
  for (const char c : pipeline) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '_' || c == '-';
    name += plain ? c : '_';
  }
  if (name.empty() || name.front() == '.') name.insert(0, "_");
  return name;
}

[[noreturn]] void fail_errno(const std::string& what) {
  throw StateError(what + ": " + std::strerror(errno));
}

void write_all(int fd, const std::string& text, const std::string& file) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_errno("cannot write " + file);
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string utc_now_millis() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm parts{};
  gmtime_r(&seconds, &parts);
  char text[40];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &parts);
  std::snprintf(text + length, sizeof text - length, ".%03dZ", static_cast<int>(millis));
  return text;
}

std::string SavedState::to_json_text() const {
  json position_value = json::parse(position, nullptr, false);
  if (position_value.is_discarded()) position_value = position;  // kept as the text it is
  const json document{{"format", 1},           {"pipeline", pipeline}, {"source", source},
                      {"position", position_value}, {"committed_at", committed_at}, {"run", run},
                      {"settled", settled}};
  return document.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

SavedState SavedState::from_json_text(const std::string& text, const std::string& where) {
  const json document = json::parse(text, nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    throw StateError(where + ": the state does not parse as a JSON object; it was not written by etl-host, or was "
                             "damaged: fix it, or forget it with `etl-host state reset PIPELINE`");
  }
  auto text_member = [&](const char* name) {
    const auto found = document.find(name);
    if (found == document.end() || !found->is_string()) {
      throw StateError(where + ": the state has no text member \"" + name + "\"; fix it or reset it");
    }
    return found->get<std::string>();
  };
  if (document.value("format", 0) != 1) {
    throw StateError(where + ": the state's format is " + document.value("format", json()).dump() +
                     "; this etl-host reads format 1");
  }
  SavedState state;
  state.pipeline = text_member("pipeline");
  state.source = text_member("source");
  state.committed_at = text_member("committed_at");
  state.run = text_member("run");
  const auto position = document.find("position");
  if (position == document.end()) throw StateError(where + ": the state has no \"position\"; fix it or reset it");
  state.position = position->dump(-1, ' ', false, json::error_handler_t::replace);
  if (const auto settled = document.find("settled"); settled != document.end() && settled->is_number_unsigned()) {
    state.settled = settled->get<std::uint64_t>();
  }
  return state;
}

FileStateStore::FileStateStore(std::string folder, std::string pipeline)
    : folder_(std::move(folder)), pipeline_(std::move(pipeline)) {
  const std::string base = (std::filesystem::path(folder_) / file_name_for(pipeline_)).string();
  file_ = base + ".state.json";
  lock_file_ = base + ".state.lock";
}

FileStateStore::~FileStateStore() { release(); }

std::string FileStateStore::describe() const { return "state file " + file_; }

std::string FileStateStore::temporary_file() const { return file_ + ".tmp"; }

void FileStateStore::acquire(const std::string& run_id) {
  if (lock_fd_ >= 0) return;
  std::error_code ec;
  std::filesystem::create_directories(folder_, ec);
  if (ec) throw StateError("cannot create the state folder " + folder_ + ": " + ec.message());
  const int fd = ::open(lock_file_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno("cannot open " + lock_file_);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    std::string holder;
    char buffer[256];
    const ssize_t got = ::pread(fd, buffer, sizeof buffer - 1, 0);
    if (got > 0) holder.assign(buffer, static_cast<std::size_t>(got));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == '\0')) holder.pop_back();
    ::close(fd);
    if (error == EWOULDBLOCK) {
      throw StateError("the state of pipeline '" + pipeline_ + "' is held by another run" +
                       (holder.empty() ? std::string() : " (" + holder + ")") + " (" + lock_file_ +
                       " is locked): one run of a pipeline at a time; this one does not start");
    }
    errno = error;
    fail_errno("cannot lock " + lock_file_);
  }
  // Who holds it, for the message a second run gives.
  const std::string holder = "run " + run_id + ", pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    [[maybe_unused]] const ssize_t ignored = ::pwrite(fd, holder.data(), holder.size(), 0);
  }
  lock_fd_ = fd;
}

void FileStateStore::release() noexcept {
  if (lock_fd_ < 0) return;
  if (::ftruncate(lock_fd_, 0) != 0) {
    // The lock goes with the descriptor; an old holder's name left in the file is harmless.
  }
  ::close(lock_fd_);
  lock_fd_ = -1;
}

std::optional<SavedState> FileStateStore::load() {
  std::ifstream in(file_, std::ios::binary);
  if (!in) {
    if (errno == ENOENT || !std::filesystem::exists(file_)) return std::nullopt;
    fail_errno("cannot read " + file_);
  }
  std::ostringstream text;
  text << in.rdbuf();
  SavedState state = SavedState::from_json_text(text.str(), file_);
  if (state.pipeline != pipeline_) {
    throw StateError(file_ + ": the state belongs to pipeline '" + state.pipeline + "', not '" + pipeline_ +
                     "' (two names map to one file name): give one of them settings.state.path of its own");
  }
  return state;
}

void FileStateStore::commit(const SavedState& state) {
  const std::string text = state.to_json_text();
  const std::string temporary = temporary_file();
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_errno("cannot create " + temporary);
  try {
    write_all(fd, text, temporary);
    if (::fsync(fd) != 0) fail_errno("cannot sync " + temporary);
  } catch (...) {
    ::close(fd);
    throw;
  }
  if (::close(fd) != 0) fail_errno("cannot close " + temporary);
  if (std::rename(temporary.c_str(), file_.c_str()) != 0) fail_errno("cannot rename " + temporary + " to " + file_);
  // The rename itself is durable only once the folder is synced.
  const int folder = ::open(folder_.empty() ? "." : folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder < 0) fail_errno("cannot open the state folder " + folder_);
  const int synced = ::fsync(folder);
  const int error = errno;
  ::close(folder);
  if (synced != 0) {
    errno = error;
    fail_errno("cannot sync the state folder " + folder_);
  }
}

void FileStateStore::reset() {
  if (std::remove(file_.c_str()) != 0 && errno != ENOENT) fail_errno("cannot remove " + file_);
  std::remove(temporary_file().c_str());
}

std::unique_ptr<StateStore> make_state_store(const json& state_settings, const std::string& pipeline) {
  const std::string store = state_settings.value("store", std::string("file"));
  if (store == "file") {
    return std::make_unique<FileStateStore>(state_settings.value("path", std::string("state")), pipeline);
  }
  if (store == "postgres") return make_postgres_state_store(state_settings, pipeline);
  throw StateError("settings.state.store: \"" + store + "\" is not a state store (file or postgres)");
}

}  // namespace etl::host
