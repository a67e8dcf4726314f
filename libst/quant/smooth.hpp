// Anti-outlier smoothing (SmoothQuant-style) for static W8A8: moves activation outliers into
// the weights with a per-input-channel scale s, exactly (the float model computes the same
// function up to the rounding of the rewritten tensors to their dtype).
//
// For a set of linears reading the same input x [.., k] that a preceding op P produces
// linearly per channel, x_j = P_j(.) , we rewrite
//   P_j  <- P_j / s_j          (the preceding op's channel j)
//   W[:,j] <- W[:,j] * s_j     (every consumer's input column j)
// so x'_j = x_j / s_j and W' x' = W x. The pairs used (HF naming):
//   input_layernorm.weight           -> q/k/v_proj (MLA: q_a_proj + kv_a_proj_with_mqa, or q_proj)
//   post_attention_layernorm.weight  -> gate/up_proj  (dense MLP layers only: in an MoE layer the
//                                       router and every expert read it too; not smoothed)
//   self_attn.q_a_layernorm.weight   -> q_b_proj      (MLA)
//   mlp.up_proj rows (every MLP, shared and routed experts too; mixtral w3; the up half of a
//                                       fused gate_up) -> down_proj (w2, dense_4h_to_h), since the MLP
//                                       computes h = act(gate x) * (up x): dividing up's row j by
//                                       s_j divides h_j by s_j.
// (Which pair a linear is in: Architecture::input_source.)
// s_j = max(a_j, eps)^alpha / max(w_j, eps)^(1 - alpha), a_j the calibration absmax of input
// channel j, w_j the largest |W[:,j]| over the consumers; clamped to [1e-4, 1e4]; 1 where a_j = 0.
//
// The statistics of every smoothed linear are rewritten to describe x': absmax / s, sumsq / s^2,
// per-channel min/max / s, and the per-tensor min/max from the per-channel ones (when the
// statistics have them; otherwise the symmetric bound +-max_j absmax'_j).
//
// Memory: the norm weights and up_proj biases it rewrites are returned as values; linear weights
// are not: each pair's consumers are read where they lie, a tile at a time (smooth_scan.hpp), and
// what happens to a weight is returned as scales (WeightScales) that the quantizer applies as it
// streams the weight.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/callbacks.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/core/error.hpp"
#include "libst/format/stats.hpp"

namespace st {

struct SmoothOptions {
  float alpha = 0.5f;
  bool norms = true;     // fold into the preceding RMSNorm weights
  bool up_down = true;   // fold down_proj's input scale into up_proj's rows
  // Per-pair alpha search: for each pair, the alpha in {0.2, 0.3, ..., 0.8} (and `alpha`) that
  // minimises an estimate of the quantized output error (weights per row, activation per
  // tensor) computed from the statistics; `alpha` is used when false.
  bool search = false;
  // When set, only the pairs whose consumers' fused group is listed (the groups quantized static:
  // smoothing and its search model per-tensor activations).
  const std::set<std::string>* groups = nullptr;
};

// What smoothing does to linear weights, by linear prefix: W'[r, j] = W[r, j] * column[j] / row[r].
//   column: the s of the pair whose consumer the linear is (its input column j times s_j);
//   row:    the s of the pair whose source the linear is (up_proj: row j divided by down_proj's s_j).
// One linear's scales: column [k] and row [n], each null where it has none.
struct LinearScales {
  const float* column = nullptr;
  const float* row = nullptr;
  explicit operator bool() const { return column || row; }
  // Applies them to rows [r0, r1), columns [c0, c1) of W, held as the dense fp32 tile w (row r at
  // w + (r - r0) * (c1 - c0)): W'[r, j] = W[r, j] * column[j] / row[r], in that order.
  void apply(int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* w) const;
};

struct WeightScales {
  std::map<std::string, std::vector<float>> column, row;
  bool empty() const { return column.empty() && row.empty(); }
  bool has(const std::string& prefix) const { return column.count(prefix) || row.count(prefix); }
  LinearScales of(const std::string& prefix) const;
};

// Applies the scales of linear `prefix` (if any) to its fp32 weight W [n, k] in place.
void apply_weight_scales(const WeightScales& scales, const std::string& prefix, int64_t n, int64_t k, float* w);

struct SmoothResult {
  // Rewritten small tensors by name, as fp32 values (shape unchanged): the norm weights and
  // up_proj biases; the caller stores them in the tensor's own dtype.
  std::map<std::string, std::vector<float>> tensors;
  WeightScales scales;  // the rewritten linear weights
  size_t pairs = 0;  // smoothing pairs applied
  std::map<std::string, float> alpha;  // chosen alpha per pair (by the preceding tensor's name)
  std::vector<std::string> smoothed;   // prefixes of the linears whose input was rescaled (alpha > 0)
};

// One smoothing pair: the op before a set of linears reading the same input, and those linears.
struct SmoothPair {
  std::string source;                        // a norm weight, or the source linear's weight name
  const LinearInfo* source_linear = nullptr;  // up_proj / gate_up, whose rows are scaled (else a norm)
  std::string source_bias;                   // the source linear's bias (rewritten when present)
  int64_t row0 = 0;                          // the source linear's first row feeding the members
                                             // (the up half of a fused gate_up; else 0)
  std::vector<const LinearInfo*> members;    // the consumers (a fused group)
};
// The pairs `options` asks for, in the order smooth() applies them (the table at the top). A
// fused group with a linear kept float by default is not smoothed.
std::vector<SmoothPair> smoothing_pairs(const Architecture& arch, const SmoothOptions& options);

// Needs random access to the checkpoint (reads the weights it rewrites). Rewrites `stats` in
// place for the smoothed linears. Linears without statistics (unrouted experts) are left alone.
// progress: "smoothing pairs" done of the total.
Result<SmoothResult> smooth(const Checkpoint& ckpt, const Architecture& arch, ActivationStats& stats,
                            const SmoothOptions& options, const ProgressFn& progress = {});

// The smoothing scale of one channel (exposed for tests).
float smooth_scale(float act_absmax, float weight_absmax, float alpha);

}  // namespace st
