// Attention quantization's tensors (FAQuant, FAKQuant for DeepSeek MLA), computed from the
// statistics st-calibrate records per attention block A (A.q_absmax, A.k_absmax, A.v_absmax;
// MLA: A.q_absmax over the absorbed q, A.kv_absmax over the KV latent):
//   standard: A.fa_q.scale [heads,1], A.fa_k.scale / A.fa_v.scale [kv_heads,1] in the model dtype
//   MLA:      A.fa_q.scale [heads,1], A.fa_k.scale / A.fa_v.scale [1,1] (both from the latent), F32
// scale = max(absmax / 127, eps); each with A.fa_*.offset int8 zeros of the same shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/error.hpp"
#include "libst/format/safetensors.hpp"
#include "libst/format/stats.hpp"

namespace st {

struct AttentionTensor {
  TensorSpec spec;
  std::vector<uint8_t> bytes;
};

// In order: per attention block fa_q, fa_k, fa_v, each scale then offset. Errors name the
// statistics file and the missing or misshapen statistic.
Result<std::vector<AttentionTensor>> attention_scales(const Architecture& arch, const ActivationStats& stats,
                                                      const std::string& stats_path);

}  // namespace st
