// Anti-outlier smoothing undone for the numeric checks: the smoothed float weights
// W' = W diag(col) / row that st-quant-w8a8 quantized (libst/quant/smooth.hpp), rebuilt from the
// quantized checkpoint and the float model, since the checkpoint records only that it was
// smoothed ("st.quant.weights_updated" = "1"). The pairs come from smoothing_pairs on the float
// model's architecture; a pair smoothing left alone rebuilds to scales of 1.
//   col of a linear fed by a norm: norm / norm', the float model's norm over the stored one, per
//       channel; uncertain by the stored norm's rounding (half an ulp of its dtype).
//   row of up_proj, which is the col of its down_proj: max_c |W_up[j,c] col_up[c]| over the
//       weights kept nonzero, over 127 weight_scale_up[j] (the quantizer's scale is that max /
//       127); uncertain by col_up's uncertainty. For an up_proj kept float: that max over the
//       stored row's largest |value|.
// A channel whose scale cannot be told (a norm rounded to zero, an all-zero row) gets an
// infinite uncertainty: its weights are left out of the comparison.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/quant/smooth.hpp"
#include "libst/verify/internal.hpp"

namespace st::verify_detail {

struct SmoothScales {
  std::vector<double> col, col_err;  // [k]; empty when the linear's input was not smoothed
  std::vector<double> row, row_err;  // [n]; empty when its rows were not
  // W' of rows [r0, r0 + rows) of the float weight W (stride k), in place.
  void apply(float* w, int64_t r0, int64_t rows, int64_t k) const;
};

class SmoothRebuild {
 public:
  SmoothRebuild(const Unit& u, const Checkpoint& against, const Architecture& arch);
  // The scales of linear `prefix`: nullptr when smoothing does not touch it or they cannot be
  // rebuilt (a source tensor missing from either checkpoint).
  const SmoothScales* of(const std::string& prefix);

 private:
  std::optional<SmoothScales> build(const std::string& prefix);
  bool column_scales(const SmoothPair& p, std::vector<double>& col, std::vector<double>& err);
  bool row_scales(const LinearInfo& up, std::vector<double>& row, std::vector<double>& err);

  const Unit& u_;
  const Checkpoint& against_;
  std::vector<SmoothPair> pairs_;
  std::map<std::string, size_t> consumer_of_, source_of_;  // linear prefix -> pair
  std::map<std::string, std::optional<SmoothScales>> done_;
};

}  // namespace st::verify_detail
