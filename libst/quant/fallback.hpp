// Automatic fallback: which fused groups of linears to keep float, from the statistics.
//
// A group's score is its input's dynamic range over its spread, as msModelSlim's disable_level
// ranks layers: (max_x - min_x) / rms_x, with rms_x = sqrt(sum_j sumsq_j / (tokens * k)) over
// the group's (possibly smoothed) statistics. Per-tensor int8 spends 255 steps on max - min;
// the larger the ratio, the fewer steps the typical value gets. Groups without statistics score 0.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/format/stats.hpp"

namespace st {

struct FallbackPick {
  std::string group;        // fused group id
  std::string prefix;       // its first linear's prefix (names the group to keep float)
  double score = 0;
};

// The n highest-scoring groups among those not float by default (and, when `groups` is given,
// listed there), highest first.
std::vector<FallbackPick> pick_fallback(const Architecture& arch, const ActivationStats& stats, int n,
                                        const std::set<std::string>* groups = nullptr);

}  // namespace st
