// The accuracy steps that precede static W8A8 quantization, shared by st-quant-w8a8 and
// st-sparsify: anti-outlier smoothing (smooth.hpp), the activation range method
// (act_range.hpp) and automatic fallback (fallback.hpp), applied in that order to a copy of
// the statistics the caller then quantizes with.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/core/error.hpp"
#include "libst/quant/act_range.hpp"
#include "libst/quant/quantize.hpp"
#include "libst/quant/smooth.hpp"
#include "libst/format/stats.hpp"

namespace st {

struct StaticPrepOptions {
  bool smooth = true;            // anti-outlier smoothing (smooth_options says how)
  SmoothOptions smooth_options;  // default: search
  std::string anti_outlier = "search";  // as the user named it, for the notes
  ActMethod act = ActMethod::auto_;
  int fallback = 0;  // keep float the n groups with the worst estimated input quantization
  // The fused groups quantized static, when not every group is: smoothing and fallback touch
  // only these.
  std::optional<std::set<std::string>> static_groups;
  ProgressFn progress;  // smoothing pairs done
  StaticPrepOptions() { smooth_options.search = true; }
};

// The --anti-outlier and --act-method values into o. anti_outlier: "none", "smoothquant[:ALPHA]"
// (norms -> q/k/v, gate/up), "smoothquant-all[:ALPHA]" (also up_proj -> down_proj) or "search"
// (both, alpha chosen per pair); act_method: "minmax", "mse" or "auto".
Status parse_static_methods(const std::string& anti_outlier, const std::string& act_method, StaticPrepOptions& o);

struct StaticPrep {
  // Rewritten norms and biases for QuantizeOptions::overrides, and the linear weights' scales
  // for QuantizeOptions::weight_scales (W' = W diag(column) / row).
  std::map<std::string, std::vector<float>> overrides;
  WeightScales weight_scales;
  std::map<std::string, std::string> float_linears;  // fallback picks and why, for QuantizeOptions
  std::vector<std::string> notes;           // one line each on what was done, for the user

  // Points the quantizer at the rewritten tensors and scales (this must outlive it) and adds
  // the fallback picks to its float linears.
  void attach(QuantizeOptions& q) const;
};

// Runs the steps on an open checkpoint (smoothing needs random access); rewrites `stats` in
// place to describe the quantizer's inputs (smoothed, ranges chosen).
Result<StaticPrep> prepare_static(const Checkpoint& ckpt, const Architecture& arch, ActivationStats& stats,
                                  const StaticPrepOptions& options);

}  // namespace st
