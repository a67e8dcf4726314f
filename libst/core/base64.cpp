// Standard base64 (see base64.hpp).
#include "libst/core/base64.hpp"

#include <cstdint>
#include <cstring>

namespace st {
namespace {

constexpr const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::string base64_encode(const std::string& in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    const uint32_t n = static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << 16 |
                       (i + 1 < in.size() ? static_cast<uint32_t>(static_cast<uint8_t>(in[i + 1])) << 8 : 0) |
                       (i + 2 < in.size() ? static_cast<uint8_t>(in[i + 2]) : 0);
    out += kB64[n >> 18 & 63];
    out += kB64[n >> 12 & 63];
    out += i + 1 < in.size() ? kB64[n >> 6 & 63] : '=';
    out += i + 2 < in.size() ? kB64[n & 63] : '=';
  }
  return out;
}

std::optional<std::string> base64_decode(const std::string& in) {
  if (in.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(in.size() / 4 * 3);
  auto val = [](char c) -> int {
    const char* p = std::strchr(kB64, c);
    return c && p ? static_cast<int>(p - kB64) : -1;
  };
  for (size_t i = 0; i < in.size(); i += 4) {
    const bool pad2 = in[i + 2] == '=', pad3 = in[i + 3] == '=';
    if ((pad2 && !pad3) || ((pad2 || pad3) && i + 4 != in.size())) return std::nullopt;
    const int a = val(in[i]), b = val(in[i + 1]), c = pad2 ? 0 : val(in[i + 2]), d = pad3 ? 0 : val(in[i + 3]);
    if (a < 0 || b < 0 || c < 0 || d < 0) return std::nullopt;
    const uint32_t n = static_cast<uint32_t>(a) << 18 | static_cast<uint32_t>(b) << 12 | static_cast<uint32_t>(c) << 6 |
                       static_cast<uint32_t>(d);
    out += static_cast<char>(n >> 16);
    if (!pad2) out += static_cast<char>(n >> 8 & 0xff);
    if (!pad3) out += static_cast<char>(n & 0xff);
  }
  return out;
}

}  // namespace st
