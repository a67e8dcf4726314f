// The alpha search's weight scans, portable and AVX2 (target "avx2" without "fma", so that the
// compiler cannot contract the sums of squares into fused multiply-adds).
#include "libst/quant/smooth_scan.hpp"

#include <algorithm>
#include <cmath>

#include "libst/core/cpu.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace st {
namespace {

void scan_columns_portable(const float* w, int64_t rows, int64_t ld, int64_t cols, float* wmax, double* colsq) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < cols; ++j) {
      const float v = w[r * ld + j];
      wmax[j] = std::max(wmax[j], std::fabs(v));
      colsq[j] += double(v) * v;
    }
}

void scan_rows_portable(const float* w, int64_t rows, int64_t ld, int64_t cols, const float* const* s, int nc,
                        float* rmax) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = w + r * ld;
    for (int c = 0; c < nc; ++c) {
      float m = rmax[r * nc + c];
      for (int64_t j = 0; j < cols; ++j) m = std::max(m, std::fabs(x[j]) * s[c][j]);
      rmax[r * nc + c] = m;
    }
  }
}

#if defined(__x86_64__)
bool have_avx2() { return cpu_features().avx2; }

// max(b, a) lane by lane keeps b where a is NaN, as std::max(b, a) does.
__attribute__((target("avx2"))) inline __m256 max_skip_nan(__m256 a, __m256 b) { return _mm256_max_ps(a, b); }

__attribute__((target("avx2"))) inline __m256 abs8(__m256 v) {
  return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

__attribute__((target("avx2"))) void scan_columns_avx2(const float* w, int64_t rows, int64_t ld, int64_t cols,
                                                       float* wmax, double* colsq) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = w + r * ld;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      const __m256 v = _mm256_loadu_ps(x + j);
      _mm256_storeu_ps(wmax + j, max_skip_nan(abs8(v), _mm256_loadu_ps(wmax + j)));
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
      const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      _mm256_storeu_pd(colsq + j, _mm256_add_pd(_mm256_loadu_pd(colsq + j), _mm256_mul_pd(lo, lo)));
      _mm256_storeu_pd(colsq + j + 4, _mm256_add_pd(_mm256_loadu_pd(colsq + j + 4), _mm256_mul_pd(hi, hi)));
    }
    for (; j < cols; ++j) {
      const float v = x[j];
      wmax[j] = std::max(wmax[j], std::fabs(v));
      colsq[j] += double(v) * v;
    }
  }
}

// NC candidates (at most 8) in registers: each 8 columns of a row are loaded once for all of them.
template <int NC>
__attribute__((target("avx2"))) void scan_rows_avx2(const float* w, int64_t rows, int64_t ld, int64_t cols,
                                                    const float* const* s, float* rmax, int stride) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = w + r * ld;
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8) {
      const __m256 a = abs8(_mm256_loadu_ps(x + j));
      for (int c = 0; c < NC; ++c) acc[c] = max_skip_nan(_mm256_mul_ps(a, _mm256_loadu_ps(s[c] + j)), acc[c]);
    }
    for (int c = 0; c < NC; ++c) {
      alignas(32) float lane[8];
      _mm256_store_ps(lane, acc[c]);
      float m = rmax[r * stride + c];
      for (float v : lane) m = std::max(m, v);
      for (int64_t t = j; t < cols; ++t) m = std::max(m, std::fabs(x[t]) * s[c][t]);
      rmax[r * stride + c] = m;
    }
  }
}

void scan_rows_simd(const float* w, int64_t rows, int64_t ld, int64_t cols, const float* const* s, int nc,
                    float* rmax) {
  for (int c0 = 0; c0 < nc; c0 += 8) {
    const float* const* sc = s + c0;
    float* out = rmax + c0;
    switch (std::min(8, nc - c0)) {
      case 1: scan_rows_avx2<1>(w, rows, ld, cols, sc, out, nc); break;
      case 2: scan_rows_avx2<2>(w, rows, ld, cols, sc, out, nc); break;
      case 3: scan_rows_avx2<3>(w, rows, ld, cols, sc, out, nc); break;
      case 4: scan_rows_avx2<4>(w, rows, ld, cols, sc, out, nc); break;
      case 5: scan_rows_avx2<5>(w, rows, ld, cols, sc, out, nc); break;
      case 6: scan_rows_avx2<6>(w, rows, ld, cols, sc, out, nc); break;
      case 7: scan_rows_avx2<7>(w, rows, ld, cols, sc, out, nc); break;
      default: scan_rows_avx2<8>(w, rows, ld, cols, sc, out, nc); break;
    }
  }
}
#endif

}  // namespace

void scan_columns(const float* w, int64_t rows, int64_t ld, int64_t cols, float* wmax, double* colsq, bool simd) {
#if defined(__x86_64__)
  if (simd && have_avx2()) return scan_columns_avx2(w, rows, ld, cols, wmax, colsq);
#endif
  scan_columns_portable(w, rows, ld, cols, wmax, colsq);
}

void scan_rows(const float* w, int64_t rows, int64_t ld, int64_t cols, const float* const* s, int nc, float* rmax,
               bool simd) {
#if defined(__x86_64__)
  if (simd && have_avx2()) return scan_rows_simd(w, rows, ld, cols, s, nc, rmax);
#endif
  scan_rows_portable(w, rows, ld, cols, s, nc, rmax);
}

}  // namespace st
