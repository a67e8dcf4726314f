// Row pruning rules: magnitude, Wanda and N:M per output row, and the column selection that
// SparseGPT (sparsegpt.hpp) shares with them.
//
// Pruning works per output row n of a linear W [n, k]:
//   score[n, j] = |W[n, j]|                       magnitude
//               = |W[n, j]| * sqrt(sumsq[j])      Wanda (sumsq: the statistics' per input channel
//                                                 sum of x^2, so sqrt(sumsq) = ||x_j||_2)
//   unstructured (magnitude, wanda): zero the floor(ratio * k) lowest-scoring weights of the row;
//   N:M (nm): in every group of M consecutive columns zero the M - N lowest-scoring (Wanda
//       scores when statistics are given, else magnitude); a last partial group of L columns
//       loses floor(L * (M - N) / M);
//   protect F: the round(F * k) largest-|W| weights of each row are never zeroed (outliers, as
//       msModelSlim's "fraction"); the pruning quota then comes out of the other weights.
//   Ties are broken by column index (lower column pruned first), so results are deterministic.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "libst/core/error.hpp"

namespace st {

enum class SparsifyMethod { magnitude, wanda, nm, sparsegpt };
const char* sparsify_method_name(SparsifyMethod m);

struct PruneSpec {
  SparsifyMethod method = SparsifyMethod::wanda;
  double ratio = 0.5;   // unstructured: fraction of each row zeroed
  int nm_n = 2, nm_m = 4;  // N:M: keep N of every M
  double protect = 0;   // fraction of each row's largest |W| never zeroed
};

// Checks a spec's ranges (ratio in [0, 1), 0 < N < M, protect in [0, 1]).
Status check_prune_spec(const PruneSpec& spec);

// Prunes W (fp32 [n, k], row-major) in place. col_norm: ||x_j||_2 per input channel [k] (Wanda,
// and N:M scores), or null for magnitude scores. Returns the number of weights zeroed (weights
// that were already zero count when the rule picks them). Rows run in parallel (st::threads()).
uint64_t prune_rows(float* w, int64_t n, int64_t k, const float* col_norm, const PruneSpec& spec);

// The column selection every rule shares. `cand` is scratch.
//
// How many of `len` columns the spec zeroes: for N:M a group (M - N, or floor(len * (M - N) / M)
// for a last partial group), otherwise floor(ratio * len).
int64_t prune_quota(const PruneSpec& spec, int64_t len);
// prot[j] = 1 for the round(protect * k) largest |row[j]|, 0 elsewhere.
template <class T>
void mark_protected(const T* row, int64_t k, double protect, std::vector<char>& prot, std::vector<int32_t>& cand) {
  prot.assign(static_cast<size_t>(k), 0);
  const int64_t keep = std::min<int64_t>(k, std::llround(protect * static_cast<double>(k)));
  if (keep <= 0) return;
  cand.resize(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) cand[j] = static_cast<int32_t>(j);
  auto more = [row](int32_t a, int32_t b) {
    const auto x = std::fabs(row[a]), y = std::fabs(row[b]);
    return x > y || (x == y && a < b);
  };
  if (keep < k) std::nth_element(cand.begin(), cand.begin() + (keep - 1), cand.end(), more);
  for (int64_t i = 0; i < keep; ++i) prot[cand[i]] = 1;
}
// Calls pick(j) for the `quota` lowest (score[j], j) among the unprotected columns of [a, b);
// returns how many it picked.
template <class S, class Pick>
int64_t pick_lowest(const S* score, int64_t a, int64_t b, const std::vector<char>& prot, int64_t quota,
                    std::vector<int32_t>& cand, Pick pick) {
  cand.clear();
  for (int64_t j = a; j < b; ++j)
    if (!prot[j]) cand.push_back(static_cast<int32_t>(j));
  quota = std::min<int64_t>(quota, static_cast<int64_t>(cand.size()));
  if (quota <= 0) return 0;
  auto less = [score](int32_t x, int32_t y) { return score[x] < score[y] || (score[x] == score[y] && x < y); };
  if (quota < static_cast<int64_t>(cand.size())) std::nth_element(cand.begin(), cand.begin() + (quota - 1), cand.end(), less);
  for (int64_t i = 0; i < quota; ++i) pick(cand[i]);
  return quota;
}

}  // namespace st
