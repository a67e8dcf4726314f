// Recognising other model formats by their magic bytes.
#include "libst/format/foreign.hpp"

#include <unistd.h>

#include <cstdint>

#include "libst/core/paths.hpp"

namespace st {
namespace {

uint32_t le32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v |= uint32_t(uint8_t(s[at + i])) << (8 * i);
  return v;
}
uint16_t le16(std::string_view s, size_t at) { return uint16_t(uint8_t(s[at]) | uint8_t(s[at + 1]) << 8); }

bool starts(std::string_view s, std::string_view magic) { return s.substr(0, magic.size()) == magic; }

// A zip's first member name (local file header: name length at 26, name at 30), when at hand.
std::string_view first_zip_member(std::string_view s) {
  if (s.size() < 30) return {};
  const size_t n = le16(s, 26);
  return s.size() >= 30 + n ? s.substr(30, n) : std::string_view();
}

// ONNX is a protobuf ModelProto with no magic: field 1 (ir_version, a small varint) comes
// first, then another ModelProto field (producer_name, graph, opset_import, ...).
bool looks_like_onnx(std::string_view s) {
  if (s.size() < 3 || uint8_t(s[0]) != 0x08 || uint8_t(s[1]) < 1 || uint8_t(s[1]) > 20) return false;
  switch (uint8_t(s[2])) {
    case 0x12: case 0x1a: case 0x22: case 0x28: case 0x32: case 0x3a: case 0x42: return true;
    default: return false;
  }
}

}  // namespace

std::optional<std::string> foreign_format(std::string_view s) {
  if (starts(s, "GGUF"))
    return s.size() >= 8 ? "a GGUF file (llama.cpp, version " + std::to_string(le32(s, 4)) + ")"
                         : std::string("a GGUF file (llama.cpp)");
  if (starts(s, "PK\x03\x04")) {
    const std::string_view member = first_zip_member(s);
    if (member.size() >= 8 && member.substr(member.size() - 8) == "data.pkl")
      return std::string("a PyTorch checkpoint (torch.save zip, e.g. pytorch_model.bin or .pt)");
    return std::string("a zip archive (torch.save writes PyTorch checkpoints as zips)");
  }
  if (s.size() >= 2 && uint8_t(s[0]) == 0x80 && uint8_t(s[1]) >= 2 && uint8_t(s[1]) <= 5)
    return std::string("a Python pickle (a legacy PyTorch checkpoint, e.g. pytorch_model.bin or .pt)");
  if (starts(s, "\x93NUMPY")) return std::string("a NumPy array (.npy)");
  if (starts(s, "\x89HDF\r\n\x1a\n")) return std::string("an HDF5 file (e.g. Keras .h5)");
  if (looks_like_onnx(s)) return std::string("an ONNX model");
  return std::nullopt;
}

std::optional<std::string> foreign_format_of_file(const std::string& path) {
  auto fd = open_regular(path);
  if (!fd) return std::nullopt;
  char buf[128];
  const ssize_t n = pread(*fd, buf, sizeof buf, 0);
  ::close(*fd);
  return n > 0 ? foreign_format(std::string_view(buf, size_t(n))) : std::nullopt;
}

Error foreign_format_error(const std::string& what, const std::string& path) {
  return make_error(Errc::unsupported,
                    "this is " + what + ", not safetensors: st-tools read safetensors checkpoints (a Hugging Face " +
                        "model directory or .safetensors file; save_pretrained(..., safe_serialization=True) writes one)",
                    path);
}

}  // namespace st
