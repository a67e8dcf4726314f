// The one check for names read from files (see names.hpp).
#include "libst/format/names.hpp"

#include <cstdio>

namespace st {

namespace {

// Printable form of a hostile name for messages: control bytes as \xNN, at most 80 bytes.
std::string shown(std::string_view name) {
  std::string out;
  for (const char ch : name.substr(0, 80)) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  return name.size() > 80 ? out + "..." : out;
}

}  // namespace

Status check_plain_name(std::string_view name) {
  auto refuse = [&](const char* why) {
    return make_error(Errc::format, "'" + shown(name) + "' is not a plain file name (" + why + ")");
  };
  if (name.empty()) return refuse("it is empty");
  if (name == "." || name == "..") return refuse("it names a directory");
  if (name.size() > 255) return refuse("it is longer than 255 bytes");
  for (const char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '/') return refuse(name.front() == '/' ? "it is an absolute path" : "it holds a '/'");
    if (c == 0) return refuse("it holds a NUL byte");
    if (c < 0x20 || c == 0x7f) return refuse("it holds a control character");
  }
  return Status{};
}

Result<std::string> join_plain_name(const std::string& dir, std::string_view name) {
  ST_CHECK(check_plain_name(name));
  return dir + "/" + std::string(name);
}

}  // namespace st
