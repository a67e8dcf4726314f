// Attention quantization's tensors (FAQuant, FAKQuant for DeepSeek MLA), computed from the
// statistics st-calibrate records per attention block A (libst/model/calibrate.hpp):
//   standard: A.fa_q.scale [heads,1], A.fa_k.scale / A.fa_v.scale [kv_heads,1] in the model dtype
//   MLA:      A.fa_q.scale [heads,1], A.fa_k.scale / A.fa_v.scale [1,1] (both from the latent), F32
// scale = max(m / 127, eps); each with A.fa_*.offset int8 zeros of the same shape. m per head:
//   FaStat::absmax (the default: it measured better, man st-quant-w8a8): every one from the absmax
//     (A.q_absmax, A.k_absmax, A.v_absmax; MLA: A.kv_absmax)
//   FaStat::recall (msModelSlim's FA3 calibration): q and k from the recall window (A.q_recall,
//     A.k_recall; MLA: A.kv_recall for fa_k), v from the absmax (A.v_absmax; MLA: A.kv_absmax)
// Fallback (msModelSlim's fa_amp rollback): the `fallback` blocks whose int8 q/k/v hurt most get
// no tensors at all, as msModelSlim writes a rolled-back layer. How much a block's quantization
// hurts is estimated from the statistics: the sum over q, k and v of the mean over heads of the
// rounding noise to signal ratio, (scale^2 / 12) / rms^2 (A.q_rms, A.k_rms, A.v_rms; MLA: A.q_rms
// and A.kv_rms for k and v).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/error.hpp"
#include "libst/format/safetensors.hpp"
#include "libst/format/stats.hpp"

namespace st {

enum class FaStat { absmax, recall };
bool parse_fa_stat(const std::string& text, FaStat& out);  // "recall" or "absmax"

struct AttentionTensor {
  TensorSpec spec;
  std::vector<uint8_t> bytes;
};

struct FaBlock {
  std::string prefix;      // the attention block, e.g. model.layers.3.self_attn
  double noise = 0;        // the estimated int8 noise to signal ratio of its q, k and v (summed)
  bool quantized = true;   // false: rolled back (fallback), no tensors
};

// "fa-fallback: A kept float (estimated int8 q/k/v noise/signal 0.00123)": for stderr and --dry-run.
std::string fallback_note(const FaBlock& b);

struct AttentionScales {
  std::vector<AttentionTensor> tensors;  // per quantized block fa_q, fa_k, fa_v, each scale then offset
  std::vector<FaBlock> blocks;           // every attention block, in model order
  std::vector<std::string> rolled_back() const;  // the prefixes of the blocks not quantized
};

// Errors name the statistics file and the missing or misshapen statistic; a fallback count
// larger than the blocks rolls every block back.
Result<AttentionScales> attention_scales(const Architecture& arch, const ActivationStats& stats,
                                         const std::string& stats_path, FaStat stat = FaStat::absmax,
                                         int fallback = 0);

}  // namespace st
