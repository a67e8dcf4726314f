// Byte sizes, chunk copies and side files shared by the split and the merge (see internal.hpp).
#include "libst/shard/internal.hpp"

#include <cstring>

#include "libst/format/output.hpp"

namespace st::shard_detail {

namespace {

// Calls copy(full_offset, piece_offset, bytes) for each contiguous run of chunk c.
template <class Copy>
void for_each_run(const std::vector<int64_t>& shape, size_t esize, int dim, int64_t chunks, int64_t c, Copy copy) {
  uint64_t inner = esize;
  for (size_t i = static_cast<size_t>(dim) + 1; i < shape.size(); ++i) inner *= static_cast<uint64_t>(shape[i]);
  uint64_t outer = 1;
  for (int i = 0; i < dim; ++i) outer *= static_cast<uint64_t>(shape[i]);
  const uint64_t d = static_cast<uint64_t>(shape[dim]);
  const uint64_t part = d / static_cast<uint64_t>(chunks);
  const uint64_t span = part * inner;
  for (uint64_t o = 0; o < outer; ++o) copy((o * d + static_cast<uint64_t>(c) * part) * inner, o * span, span);
}

}  // namespace

std::string basename_of(const std::string& p) {
  const size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

size_t elem_bytes(DType t) { return dtype_bits(t) % 8 == 0 ? dtype_bits(t) / 8 : 0; }

uint64_t nbytes_of(DType t, const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return (n * dtype_bits(t) + 7) / 8;
}

uint64_t row_bytes(DType t, const std::vector<int64_t>& shape) {
  return nbytes_of(t, std::vector<int64_t>(shape.begin() + (shape.empty() ? 0 : 1), shape.end()));
}

void gather_chunk(const uint8_t* full, uint8_t* piece, const std::vector<int64_t>& shape, size_t esize, int dim,
                  int64_t chunks, int64_t c) {
  for_each_run(shape, esize, dim, chunks, c,
               [&](uint64_t f, uint64_t p, uint64_t n) { std::memcpy(piece + p, full + f, n); });
}

void scatter_chunk(const uint8_t* piece, uint8_t* full, const std::vector<int64_t>& shape, size_t esize, int dim,
                   int64_t chunks, int64_t c) {
  for_each_run(shape, esize, dim, chunks, c,
               [&](uint64_t f, uint64_t p, uint64_t n) { std::memcpy(full + f, piece + p, n); });
}

Status write_side_files(const Checkpoint& from, const std::string& dir) {
  for (const auto& [name, text] : from.side_files())
    if (name != kDescriptionFile) ST_CHECK(write_file(dir + "/" + name, text, from.side_file_mode(name)));
  return Status{};
}

}  // namespace st::shard_detail
