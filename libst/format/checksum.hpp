// XXH3-64 checksums: one per weight file in the stock xxhsum format, one per tensor in __metadata__.
//
// Per file: FILE.xxh3 beside FILE holds one line in the BSD-style form that xxhsum 0.8 prints
// for `xxhsum -H3 FILE` (and that every xxhsum >= 0.8 checks with `xxhsum -c`):
//
//   XXH3 (quant_model_weight_w8a8.safetensors) = 0123456789abcdef
//
// The name is the file's base name, so `cd DIR && xxhsum -c FILE.xxh3` checks it (like
// sha256sum, xxhsum resolves names against the current directory). The hash is the 64-bit
// XXH3 value (seed 0) of the whole file, printed as 16 lowercase hex digits, most significant
// first. We also read the GNU-style line newer xxhsum (0.8.2) writes: "XXH3_<hex>  NAME".
//
// Per tensor: the safetensors __metadata__ key "st.xxh3" holds a JSON object, as a string,
// mapping every tensor name to the 16-hex XXH3-64 of its data bytes:
//
//   "__metadata__": { "st.xxh3": "{\"lm_head.weight\":\"89ab...\",\"model.norm.weight\":\"...\"}" }
//
// Every entry has the same width, so a writer reserves the key with zero placeholders in the
// header it writes first and patches the real values in place once the data is written.
// A stream written to stdout cannot be patched and carries no "st.xxh3".
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libst/core/error.hpp"

namespace st {

// __metadata__ key of the per-tensor hashes.
constexpr const char* kTensorChecksumKey = "st.xxh3";
// Suffix of the per-file checksum file.
constexpr const char* kChecksumSuffix = ".xxh3";

// XXH3-64 (seed 0) of a byte range.
uint64_t xxh3_64(const void* data, size_t size);

// Incremental XXH3-64 (seed 0), for data that arrives in pieces.
class Xxh3 {
 public:
  Xxh3();
  ~Xxh3();
  Xxh3(const Xxh3&) = delete;
  Xxh3& operator=(const Xxh3&) = delete;
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  void* state_;  // XXH3_state_t
};

// 16 lowercase hex digits, most significant first (xxhsum's canonical form).
std::string xxh3_hex(uint64_t h);
// Parses 16 hex digits (either case); nullopt for anything else.
std::optional<uint64_t> parse_xxh3_hex(std::string_view s);

// XXH3-64 of a whole file, read in bounded chunks (no mapping, resident memory stays small).
Result<uint64_t> xxh3_file(const std::string& path);

// The checksum line for a file: "XXH3 (NAME) = HEX\n".
std::string checksum_line(const std::string& name, uint64_t h);

struct ChecksumEntry {
  std::string name;  // as written in the line (relative to the checksum file's directory)
  uint64_t hash = 0;
};
// Parses the lines of a checksum file (BSD "XXH3 (NAME) = HEX" or GNU "XXH3_HEX  NAME").
// Empty lines are skipped; any other line is a format error naming its line number.
Result<std::vector<ChecksumEntry>> parse_checksum_file(std::string_view text);

// Hashes PATH and writes PATH.xxh3 (atomically, beside it) naming PATH's base name.
// Use it after a weight file is in its final place (for SafetensorsWriter, after finish()).
Status write_checksum_file(const std::string& path);
// Writes PATH.xxh3 for a hash already computed.
Status write_checksum_file(const std::string& path, uint64_t h);

// Per-tensor hashes as the "st.xxh3" metadata value (a compact JSON object, names sorted).
std::string tensor_checksums_value(const std::map<std::string, uint64_t>& hashes);
// Parses a "st.xxh3" metadata value.
Result<std::map<std::string, uint64_t>> parse_tensor_checksums(std::string_view value);

}  // namespace st
