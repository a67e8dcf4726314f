// The two scans over a smoothing pair's consumer weights that the alpha search runs (smooth.cpp):
// per-column statistics, then per-row maxima under every candidate scale vector. Both have an
// AVX2 version, chosen at run time, that gives the same values as the portable one: maxima are
// exact in any order, and each column's sum of squares is still added in row order (no FMA).
// NaN weights are skipped by the maxima in both, as std::max(acc, NaN) does.
#pragma once

#include <cstdint>

namespace st {

// A tile W [rows, cols] (row r at w + r * ld). For every column j, rows in order:
//   wmax[j] = max(wmax[j], |W[r, j]|),  colsq[j] += double(W[r, j])^2.
void scan_columns(const float* w, int64_t rows, int64_t ld, int64_t cols, float* wmax, double* colsq,
                  bool simd = true);

// A tile W [rows, cols] and nc candidate scale vectors s[c][0, cols) (all > 0): for every row r
// and candidate c, rmax[r * nc + c] = max(rmax[r * nc + c], max_j |W[r, j] * s[c][j]|).
void scan_rows(const float* w, int64_t rows, int64_t ld, int64_t cols, const float* const* s, int nc, float* rmax,
               bool simd = true);

}  // namespace st
