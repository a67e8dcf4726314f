// What the split (plan.cpp, write.cpp) and the merge (merge.cpp) share: byte sizes of tensors and
// their pieces, cutting a chunk out of a tensor and putting it back, side files, and the
// description rebuilt from a recipe. Not part of the library's interface.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libst/format/checkpoint.hpp"
#include "libst/format/description.hpp"
#include "libst/shard/recipe.hpp"

namespace st::shard_detail {

std::string basename_of(const std::string& path);
// Bytes per element; 0 for sub-byte dtypes (which cannot be cut).
size_t elem_bytes(DType t);
// Bytes of a tensor of this dtype and shape (recipes and headers bound them: no overflow).
uint64_t nbytes_of(DType t, const std::vector<int64_t>& shape);
// Bytes of one row of dim 0 (the other dims times the element size).
uint64_t row_bytes(DType t, const std::vector<int64_t>& shape);

// Chunk c of a tensor of `shape` cut along `dim` into `chunks` equal pieces: gather copies it out
// of `full` into `piece`, scatter copies `piece` into its place in `full`.
void gather_chunk(const uint8_t* full, uint8_t* piece, const std::vector<int64_t>& shape, size_t esize, int dim,
                  int64_t chunks, int64_t c);
void scatter_chunk(const uint8_t* piece, uint8_t* full, const std::vector<int64_t>& shape, size_t esize, int dim,
                   int64_t chunks, int64_t c);

// The side files of `from` (except the description) into `dir`, each with its source's mode.
Status write_side_files(const Checkpoint& from, const std::string& dir);

// The description a merge rebuilds: the top-level keys, then each input tensor in input order
// with its type (looked up by the caller).
template <class TypeOf>
std::string rebuild_description(const Description& top, const std::vector<ShardSource>& sources, TypeOf type_of) {
  Description d;
  for (const auto& [k, v] : top.top_entries()) d.set_top(k, v);
  for (const auto& s : sources)
    if (auto t = type_of(s)) d.set_type(s.name, *t);
  return d.dump();
}

}  // namespace st::shard_detail
