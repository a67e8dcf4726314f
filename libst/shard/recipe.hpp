// The shard recipe: what st-shard records in every part's __metadata__ so that the parts can be
// merged back (st-shard --merge, st-eval on parts) and checked against the float model
// (st-verify). The one reader and writer of these keys:
//
//   st.shard.version  "1"
//   st.shard.tp       N               st.shard.rank   r (0-based)     st.shard.pack  "true"|"false"
//   st.shard.recipe   JSON array, one entry per input tensor in input order:
//                     [name, file, dtype, shape, kind, dim, chunks, into, at(, sections)]
//                     file: index into source.files; kind: replicate | rank0 | split; dim/chunks:
//                     the split; into: the part tensor holding it; at: its first row there (dim 0);
//                     sections (a fused tensor's dim-0 split): [[rows, chunks], ...] (SplitRule)
//   st.shard.source   JSON object: {"layout": "hf"|"hf-sharded"|"quantized"|"file"|"stream",
//                     "files": [{"name": weight file name, "metadata": its __metadata__}, ...],
//                     "extra": {file name: text} (an input's *.safetensors.index.json),
//                     "description": text (only when rebuilding it from the parts would differ)}
//
// A recipe or source value longer than 1 MiB (a model with hundreds of thousands of tensors) is
// stored instead under KEY.zst as base64 of its zstd frame, keeping headers far below 100 MB.
// Reading one, the frame's declared size is checked before anything is allocated: at most
// kMaxRecipeBytes and kMaxRecipeRatio times the compressed size (real recipes compress ~60x).
//
// Everything read is validated before use: dtypes and split kinds known, shapes whose byte size
// fits 63 bits, splits that divide the dimension, 0 <= at with at + rows representable, file
// names plain (libst/format/names.hpp). entry_fits() then checks an entry against the part
// tensor that holds it, so offsets computed from it stay inside that tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/arch/tensor_parallel.hpp"
#include "libst/core/dtype.hpp"
#include "libst/core/error.hpp"
#include "libst/format/safetensors.hpp"

namespace st {

constexpr uint64_t kMaxRecipeBytes = uint64_t(1) << 30;
constexpr uint64_t kMaxRecipeRatio = 1024;

// One input tensor and where it goes (an entry of st.shard.recipe).
struct ShardSource {
  std::string name;
  size_t file = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  SplitRule rule;
  std::string into;  // part tensor name
  int64_t at = 0;    // first row (dim 0) inside the part tensor
  bool stored = true;  // false for a fused group's shared parameter stored once under its first member
};

// The per-rank shape of a source under its rule.
std::vector<int64_t> piece_shape(const ShardSource& s);
// True when the source's piece lies inside a part tensor of this dtype and shape: same dtype and
// rank, rows at .. at + piece rows within dim 0, the other dims equal (a 0-rank piece: at == 0).
bool entry_fits(const ShardSource& s, DType dtype, const std::vector<int64_t>& part_shape);

// The st.shard.recipe value for these sources.
std::string recipe_json(const std::vector<ShardSource>& sources);
// Parses and validates a st.shard.recipe value; errors name `file`.
Result<std::vector<ShardSource>> parse_recipe(const std::string& text, const std::string& file);

// The parsed st.shard.source value.
struct ShardOrigin {
  std::string layout;
  struct File {
    std::string name;  // a plain name
    Metadata metadata;
  };
  std::vector<File> files;
  std::map<std::string, std::string> extra;  // plain name -> text
  std::optional<std::string> description;
};
std::string origin_json(const ShardOrigin& origin);
Result<ShardOrigin> parse_origin(const std::string& text, const std::string& file);

// What one part's __metadata__ says about it.
struct PartRecord {
  int tp = 1, rank = 0;
  bool pack = true;
  std::string recipe, source;  // the st.shard.recipe / st.shard.source texts (decompressed)
};
// Reads a part's st.shard.* keys; nullopt when the file carries none (not written by st-shard).
// Errors (Errc::format, naming `file`) for a wrong version, a tp or rank that is not a number in
// range, a bad .zst value, or a missing recipe.
Result<std::optional<PartRecord>> read_part_record(const Metadata& md, const std::string& file);

// Metadata every part shares (version, tp, pack, recipe and source, each compressed when longer
// than compress_above bytes); the writer adds kShardRankKey per part.
Metadata part_metadata(int tp, bool pack, const std::string& recipe, const std::string& source, size_t compress_above);
constexpr const char* kShardRankKey = "st.shard.rank";

}  // namespace st
