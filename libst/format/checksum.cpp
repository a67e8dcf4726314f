// XXH3-64 hashing of buffers and files, xxhsum checksum files, per-tensor metadata hashes.
#include "libst/format/checksum.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "libst/core/paths.hpp"
#include "libst/format/json.hpp"
#include "libst/format/output_file.hpp"

namespace st {

uint64_t xxh3_64(const void* data, size_t size) { return XXH3_64bits(data, size); }

Xxh3::Xxh3() : state_(XXH3_createState()) {
  if (!state_) throw std::bad_alloc();
  XXH3_64bits_reset(static_cast<XXH3_state_t*>(state_));
}
Xxh3::~Xxh3() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }
void Xxh3::update(const void* data, size_t size) {
  XXH3_64bits_update(static_cast<XXH3_state_t*>(state_), data, size);
}
uint64_t Xxh3::digest() const { return XXH3_64bits_digest(static_cast<const XXH3_state_t*>(state_)); }

std::string xxh3_hex(uint64_t h) {
  static const char digits[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) s[static_cast<size_t>(i)] = digits[h & 15];
  return s;
}

std::optional<uint64_t> parse_xxh3_hex(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  uint64_t h = 0;
  for (char c : s) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else return std::nullopt;
    h = (h << 4) | static_cast<uint64_t>(v);
  }
  return h;
}

Result<uint64_t> xxh3_file(const std::string& path) {
  ST_ASSIGN(const int fd, open_regular(path));  // a .xxh3 line naming /dev/zero must not hang
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  Xxh3 state;
  std::vector<uint8_t> buf(4 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const Error e = make_error(Errc::io, std::string("read failed: ") + std::strerror(errno), path);
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    state.update(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return state.digest();
}

std::string checksum_line(const std::string& name, uint64_t h) { return "XXH3 (" + name + ") = " + xxh3_hex(h) + "\n"; }

Result<std::vector<ChecksumEntry>> parse_checksum_file(std::string_view text) {
  std::vector<ChecksumEntry> out;
  size_t line_no = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    auto bad = [&] {
      return make_error(Errc::format, "line " + std::to_string(line_no) +
                                          " is not an XXH3 checksum line (expected 'XXH3 (NAME) = HEX')");
    };
    ChecksumEntry e;
    if (line.substr(0, 6) == "XXH3 (") {  // BSD style
      const size_t close = line.rfind(") = ");
      if (close == std::string_view::npos || close < 6) return bad();
      e.name = std::string(line.substr(6, close - 6));
      const auto h = parse_xxh3_hex(line.substr(close + 4));
      if (!h) return bad();
      e.hash = *h;
    } else if (line.substr(0, 5) == "XXH3_") {  // GNU style (xxhsum 0.8.2)
      const auto h = parse_xxh3_hex(line.substr(5, 16));
      if (!h || line.size() < 5 + 16 + 3 || line.substr(21, 2) != "  ") return bad();
      e.hash = *h;
      e.name = std::string(line.substr(23));
    } else {
      return bad();
    }
    if (e.name.empty()) return bad();
    out.push_back(std::move(e));
  }
  return out;
}

Status write_checksum_file(const std::string& path, uint64_t h) {
  const auto slash = path.rfind('/');
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const std::string line = checksum_line(base, h);
  ST_ASSIGN(auto out, OutputFile::create(path + kChecksumSuffix));
  ST_CHECK(out->write(line.data(), line.size()));
  return out->commit();
}

Status write_checksum_file(const std::string& path) {
  ST_ASSIGN(const uint64_t h, xxh3_file(path));
  return write_checksum_file(path, h);
}

std::string tensor_checksums_value(const std::map<std::string, uint64_t>& hashes) {
  nlohmann::json obj = nlohmann::json::object();
  for (const auto& [name, h] : hashes) obj[name] = xxh3_hex(h);
  return obj.dump();
}

Result<std::map<std::string, uint64_t>> parse_tensor_checksums(std::string_view value) {
  static const std::string what = std::string("__metadata__ '") + kTensorChecksumKey + "'";
  ST_ASSIGN(const nlohmann::json obj, parse_json(value, JsonRules{what.c_str(), 1}));
  if (!obj.is_object())
    return make_error(Errc::format, std::string("__metadata__ '") + kTensorChecksumKey + "' is not a JSON object");
  std::map<std::string, uint64_t> out;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const auto h = it->is_string() ? parse_xxh3_hex(it->get<std::string>()) : std::nullopt;
    if (!h)
      return make_error(Errc::format,
                        std::string("__metadata__ '") + kTensorChecksumKey + "' value is not 16 hex digits", {}, it.key());
    out[it.key()] = *h;
  }
  return out;
}

}  // namespace st
