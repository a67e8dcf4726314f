// W8A8S: prune the decoder linears of a float checkpoint (magnitude, Wanda or N:M), then
// quantize them as W8A8 static with scales from the kept weights.
//
// Pruning works per output row (libst/sparse/prune.hpp: magnitude, Wanda, N:M, protection);
//   sparsegpt (libst/sparse/sparsegpt.hpp): the mask per row and block of 128 columns from
//       w^2 / [H^-1]_jj and the kept weights updated to compensate (OBS), from each linear's
//       input Gram matrix H over calibration tokens (SparsifyOptions::sparsegpt_data), layer by
//       layer on the pruned model's own activations.
// The pruning scores are always those of the float weights W: when smoothing (below) has scaled
// the columns, W' = W diag(s), the mask is chosen on W' diag(1/s) and applied to W'; SparseGPT
// prunes W itself and its result gets the smoothing's scales.
//
// Which linears are pruned: every one but those kept float by --float globs, FLOAT scheme rules
// (quant_recipe.hpp; a W8A8S checkpoint takes W8A8S or FLOAT rules) or the loaders (routers,
// MLA kv_b_proj); smoothing and fallback touch only the pruned linears' groups, as st-quant-w8a8's.
// Quantization is st-quant-w8a8's static path (libst/quant/quantize.hpp, static_prep.hpp): by
// default anti-outlier smoothing with alpha searched per pair and act-method auto, applied to
// the float model before pruning, then weights per row from the pruned W' (the scale comes from
// the kept weights) and activations per fused group from the (smoothed, clipped) statistics.
// `--anti-outlier none --act-method minmax` gives the textbook W8A8 static of the pruned W.
//
// Output directory: the W8A8 static layout with type "W8A8S" (MindIE W8A8SC page), file
// quant_model_weight_w8a8s.safetensors, model_quant_type "W8A8S", config.json "quantize":
// "w8a8s", every other tensor copied and typed "FLOAT"; __metadata__ adds "st.sparsify.method",
// "st.sparsify.pattern" (ratio or N:M), "st.sparsify.protect", "st.sparsify.weights_updated"
// ("1" for sparsegpt: kept weights were changed), for sparsegpt its parameters and data
// ("st.sparsify.damp", ".block", ".data" (the file's name), ".data_xxh3", ".sequences",
// ".tokens", and for text ".tokenizer_xxh3", ".pack") and, when smoothing rewrote weights,
// "st.quant.weights_updated" = "1".
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "libst/core/callbacks.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/core/error.hpp"
#include "libst/format/output.hpp"
#include "libst/quant/quant_recipe.hpp"
#include "libst/quant/static_prep.hpp"
#include "libst/sparse/prune.hpp"
#include "libst/format/stats.hpp"

namespace st {

struct SparseGptData;  // libst/sparse/sparsegpt.hpp

struct SparsifyOptions {
  PruneSpec prune;
  const SparseGptData* sparsegpt_data = nullptr;  // calibration tokens, required for SparsifyMethod::sparsegpt
  const ActivationStats* stats = nullptr;  // required (activation ranges; Wanda norms)
  std::string stats_path;                  // names the statistics in errors
  std::vector<std::string> float_globs;    // fnmatch(3) globs on linear prefixes or weight names:
                                           // kept float (with their whole fused group)
  std::vector<SchemeRule> scheme_rules;    // W8A8S / FLOAT per linear (quant_recipe.hpp), first match
  Output* output = nullptr;                // open_output(): the directory to write (committed)
  StaticPrepOptions static_prep;  // smoothing, activation ranges, fallback (default: search, auto)
  // Smoothing pairs (unless static_prep has its own), SparseGPT's layer passes, then input tensors
  // and bytes.
  ProgressFn progress;
  WarnFn warn;
};

struct LinearSparsity {
  std::string prefix;
  int layer = -1;
  int64_t n = 0, k = 0;
  uint64_t pruned = 0;  // weights the rule zeroed
  uint64_t zeros = 0;   // zeros of the int8 weight (pruned, plus kept weights that round to 0)
};

struct SparsifySummary {
  std::vector<LinearSparsity> linears;  // model order
  uint64_t elements = 0, pruned = 0, zeros = 0;
  size_t linears_float = 0;
  // Routed experts no calibration token reached (no statistics, or no Gram matrix for
  // sparsegpt): pruned by magnitude (N:M by magnitude), input range borrowed as st-quant-w8a8
  // does (quantize.hpp).
  std::vector<std::string> fallbacks;
  std::vector<std::string> notes;  // what the static preparation did (StaticPrep::notes)
};

// Prunes and quantizes an open float checkpoint into options.output.
Result<SparsifySummary> sparsify(Checkpoint& ckpt, const SparsifyOptions& options);

}  // namespace st
