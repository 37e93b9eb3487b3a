// Fuzzes the HTTP body reader (Content-Length and chunked framing) against what the framing
// promises: whatever the bytes and however the socket cuts them, the body read is exactly
// the payload when the framing completes, a prefix of it followed by TruncatedBody when the
// connection closes early, and never more than was sent.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "body_reader.hpp"

namespace {

using etl::plugins::http_newline::BodyReader;
using etl::plugins::http_newline::TruncatedBody;

/// Serves `wire` in reads of at most `cut` bytes, then 0 (the peer closed).
BodyReader::RawRead serve(const std::string& wire, std::size_t cut) {
  auto at = std::make_shared<std::size_t>(0);
  return [&wire, cut, at](char* buffer, std::size_t length) {
    const std::size_t n = std::min({length, cut, wire.size() - *at});
    std::memcpy(buffer, wire.data() + *at, n);
    *at += n;
    return static_cast<int>(n);
  };
}

struct Read {
  std::string body;
  bool truncated = false;
  bool malformed = false;
};

Read read_all(BodyReader& reader) {
  Read result;
  char buffer[97];
  try {
    while (true) {
      const std::size_t n = reader.read(buffer, 1 + result.body.size() % sizeof buffer);
      if (n == 0) break;
      result.body.append(buffer, n);
    }
  } catch (const TruncatedBody&) {
    result.truncated = true;
  } catch (const std::runtime_error&) {
    result.malformed = true;
  }
  return result;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::uint8_t mode = data[0] % 3;
  const std::size_t cut = 1 + data[1] % 32;
  const std::size_t keep = data[2] | (data[3] << 8);  // bytes of the wire the peer sends before closing
  const std::string payload(reinterpret_cast<const char*>(data + 4), size - 4);

  if (mode == 0) {
    // Content-Length framing of the payload; the peer may close early.
    const std::string wire = payload.substr(0, std::min(keep, payload.size()));
    BodyReader reader(serve(wire, cut), BodyReader::Framing::content_length, payload.size());
    const Read got = read_all(reader);
    if (got.malformed) std::abort();
    if (wire.size() < payload.size()) {
      if (!got.truncated || got.body != wire) std::abort();
    } else if (got.truncated || got.body != payload) {
      std::abort();
    }
    if (reader.bytes_read() != got.body.size()) std::abort();
  } else if (mode == 1) {
    // A valid chunked encoding of the payload (chunk sizes taken from the payload itself, with
    // extensions now and then), cut after `keep` bytes when keep is below its length.
    std::string wire;
    std::size_t at = 0;
    while (at < payload.size()) {
      const std::size_t length = std::min<std::size_t>(1 + static_cast<unsigned char>(payload[at]) % 40, payload.size() - at);
      char size_line[32];
      std::snprintf(size_line, sizeof size_line, (at % 3 == 0) ? "%zx;ext=1\r\n" : "%zX\r\n", length);
      wire += size_line;
      wire += payload.substr(at, length);
      wire += "\r\n";
      at += length;
    }
    wire += "0\r\n\r\n";
    const bool cut_short = keep < wire.size();
    const std::string sent = wire.substr(0, std::min(keep, wire.size()));
    BodyReader reader(serve(sent, cut), BodyReader::Framing::chunked);
    const Read got = read_all(reader);
    if (got.malformed) std::abort();
    if (cut_short) {
      if (!got.truncated || payload.compare(0, got.body.size(), got.body) != 0) std::abort();
    } else if (got.truncated || got.body != payload) {
      std::abort();
    }
  } else {
    // Arbitrary bytes as a chunked body: any outcome but a crash, a hang, or more body
    // bytes than were sent.
    BodyReader reader(serve(payload, cut), BodyReader::Framing::chunked);
    const Read got = read_all(reader);
    if (got.body.size() > payload.size()) std::abort();
  }
  return 0;
}
