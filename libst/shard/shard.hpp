// Splitting a checkpoint into tensor-parallel parts OUT/part{r}-of-{N}/ and merging them back.
//
// Each part is a complete checkpoint directory: its weights (quant_model_weight_{type}.safetensors
// with quant_model_description.json for a quantized input, model.safetensors for a float one),
// and the input's config and tokenizer files. Part folders count ranks from 0, as MindIE's loader
// opens them (atb_llm/utils/weights.py: f"part{rank}-of-{world_size}").
//
// Every part's safetensors __metadata__ records what merging needs under "st.shard.*" keys that
// MindIE and safetensors ignore: the shard recipe, read and written by libst/shard/recipe.hpp.
// The input's own metadata ("format": "pt" ...) is kept, so HF loaders accept a float part.
//
// Planning (plan.cpp) reads headers (and the few bytes of fused groups' shared input_scale /
// input_offset, which must be identical to be stored once); writing (write.cpp) streams tensor by
// tensor, every part's file in one pass; merging (merge.cpp) follows the recipe (recipe.cpp).
// Memory: one part tensor at a time per rank.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "libst/core/callbacks.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/format/output.hpp"
#include "libst/arch/tensor_parallel.hpp"
#include "libst/shard/recipe.hpp"

namespace st {

struct ShardOptions {
  int tp = 1;
  bool pack = true;  // q/k/v -> query_key_value, gate/up -> gate_up_proj
  // model.embed_tokens whole on every rank (true) or cut by vocabulary (false); unset: whole for a
  // W8A8S input (the W8A8SC flow: MindIE reads it whole), cut otherwise.
  std::optional<bool> replicate_embeddings;
  ProgressFn progress;
  // st.shard.recipe / st.shard.source values longer than this are stored zstd-compressed.
  size_t compress_metadata_above = 1 << 20;
};

// One tensor of every part (all ranks have the same names, dtypes and shapes).
struct ShardOutput {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;   // per rank
  std::vector<size_t> pieces;   // indices into ShardPlan::sources, concatenated along dim 0
  std::string type;             // description type ("" when none)
};

struct ShardPlan {
  int tp = 1;
  bool pack = true;
  bool quantized = false;    // parts carry quant_model_description.json
  std::string weight_file;   // file name inside each part folder
  std::vector<ShardSource> sources;
  std::vector<ShardOutput> outputs;
  std::string recipe_json, source_json;  // the st.shard.recipe / st.shard.source values
  std::string description_text;          // the parts' description ("" when not quantized)
};

// Plans the split; refuses a TP degree the model does not allow (Errc::unsupported, with why).
Result<ShardPlan> plan_shard(const Checkpoint& in, const ShardOptions& options);

struct ShardSummary {
  int tp = 1;
  size_t input_tensors = 0, part_tensors = 0;
  uint64_t input_bytes = 0, output_bytes = 0;
};
// Plans and writes part{r}-of-{N}/ folders into the directory output `out` and commits it
// (nothing at the output on error).
Result<ShardSummary> shard(const Checkpoint& in, Output& out, const ShardOptions& options);

struct MergeOptions {
  ProgressFn progress;
};
struct MergeSummary {
  int tp = 1;
  size_t tensors = 0;
  uint64_t bytes = 0;
  std::string layout;
};
// Inverts shard(): reads DIR/part{r}-of-{N}/ and writes the original checkpoint to `out` (as a
// directory for hf / hf-sharded / quantized inputs, a file or stdout for a file or stream input)
// and commits it, checking that replicated tensors agree across ranks and rank-0-only tensors are
// zero elsewhere.
Result<MergeSummary> merge(const std::string& parts_dir, Output& out, const MergeOptions& options);

// Opens a directory of part folders as the checkpoint they were split from (for tools that
// evaluate or re-quantize parts): merges into a scratch directory under $TMPDIR, maps the
// result and removes the scratch directory at once (the mapping keeps the data; the disk space is
// freed when the checkpoint is closed); a dead run's scratch directory is removed and reported
// through `note`. Errors are merge()'s.
Result<std::unique_ptr<Checkpoint>> open_merged(const std::string& parts_dir, const WarnFn& note = {});

}  // namespace st
