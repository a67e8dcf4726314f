// Fuzz target: the W8A8SC tile codec (libst/w8a8sc/codec.hpp). Byte 0 picks a mode, bytes 1..4 a
// small shape [n, k]; the rest is
//   0: a weight to compress, which must decompress to the same bytes;
//   1: one tile record for decode_tile;
//   2: an index (8 bytes per tile) and a tile stream for decompress.
// Hostile records and indexes may be refused; nothing may crash or read out of bounds.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "libst/w8a8sc/codec.hpp"

namespace sc = st::w8a8sc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 5) return 0;
  const int mode = data[0] % 3;
  const int64_t n = 1 + (data[1] | data[2] << 8) % 300, k = 1 + (data[3] | data[4] << 8) % 600;
  data += 5;
  size -= 5;
  const std::vector<int64_t> info = {8, 8, k, n, 1};
  auto grid = sc::grid_from_info(info.data(), info.size());
  if (!grid) std::abort();  // a well-formed info vector
  std::vector<int8_t> out(static_cast<size_t>(n * k));
  if (mode == 0) {
    std::vector<int8_t> w(out.size());
    for (size_t i = 0; i < w.size() && i < size; ++i) w[i] = data[i] < 128 ? 0 : static_cast<int8_t>(data[i]);
    auto c = sc::compress(w.data(), n, k);
    if (!c) std::abort();
    if (!sc::decompress(c->weight.data(), c->weight.size(), c->index.data(), c->index.size(), c->info.data(), 5,
                        out.data()) ||
        out != w)
      std::abort();
  } else if (mode == 1) {
    std::vector<int8_t> tile(128 * 256);
    (void)sc::decode_tile(*grid, 0, data, size, tile.data());
  } else {
    const size_t index_bytes = std::min(size, static_cast<size_t>(grid->index_bytes()));
    (void)sc::decompress(reinterpret_cast<const int8_t*>(data) + index_bytes, size - index_bytes,
                         reinterpret_cast<const int8_t*>(data), index_bytes, info.data(), info.size(), out.data());
  }
  return 0;
}
