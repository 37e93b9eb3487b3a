#include "file_position.hpp"

#include <fcntl.h>
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

}  // namespace etl::plugins::files
