// Fuzz target: the .xxh3 checksum file reader, the per-tensor "st.xxh3" map, and the plain-name
// check every name read from them passes before it is joined to a directory.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "libst/format/checksum.hpp"
#include "libst/format/names.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto entries = st::parse_checksum_file(text)) {
    for (const auto& e : *entries) {
      auto path = st::join_plain_name("/d", e.name);
      // A name that passes is one path component under /d.
      if (path && (path->size() != 3 + e.name.size() || path->find('/', 3) != std::string::npos)) std::abort();
      if (st::parse_xxh3_hex(st::xxh3_hex(e.hash)) != e.hash) std::abort();
    }
  }
  if (auto sums = st::parse_tensor_checksums(text)) {
    auto again = st::parse_tensor_checksums(st::tensor_checksums_value(*sums));
    if (!again || *again != *sums) std::abort();
  }
  return 0;
}
