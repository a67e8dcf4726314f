// Static activation range selection: the per-tensor [min, max] each quantized linear's
// input_scale / input_offset are computed from.
//
//   minmax  the calibration min/max (textbook; no clipping)
//   mse     the range c * [min, max], c in {1, 0.98, ..., 0.5}, minimising an estimate of the
//           input's mean squared quantization error: rounding (step^2 / 12 per channel) plus
//           clipping, each channel j modelled as Laplace with scale b_j = rms_j / sqrt(2)
//           (rms from the statistics' sum of squares) and never beyond its observed per-channel
//           min/max, so a tail past c*max costs b_j^2 exp(-c*max / b_j) / 2 ... per side.
//   auto    mse for linears whose input was not smoothed, minmax for smoothed ones (measured on
//           the fixtures: the per-channel Laplace model clips smoothed inputs too hard)
// Works on (possibly smoothed) statistics; rewrites LinearStats::min / max in place.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/error.hpp"
#include "libst/format/stats.hpp"

namespace st {

enum class ActMethod { minmax, mse, auto_ };

// "minmax", "mse", "auto" -> method; false for anything else.
bool parse_act_method(const std::string& s, ActMethod& out);

struct ActRangeResult {
  std::map<std::string, float> clip;  // chosen factor c per linear prefix (1 = min/max)
};

// `smoothed`: prefixes whose input was smoothed (auto keeps their min/max).
ActRangeResult choose_act_ranges(ActivationStats& stats, ActMethod method,
                                 const std::vector<std::string>& smoothed = {});

// The estimated error of one linear's input quantized to c * [min, max] (exposed for tests).
double act_range_error(const LinearStats& s, float c);

}  // namespace st
