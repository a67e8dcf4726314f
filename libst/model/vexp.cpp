// exp by range reduction to [-ln2/2, ln2/2] and a degree-6 polynomial (Cephes expf, ~2 ulp),
// eight lanes at a time with AVX2 + FMA, chosen at run time.
#include "libst/model/vexp.hpp"

#include "libst/core/cpu.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace st::model {

namespace {

bool have_avx2() {
  return cpu_features().avx2 && cpu_features().fma;
}

__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.33654f)), _mm256_set1_ps(88.3762626647949f));
  __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

__attribute__((target("avx2,fma"))) inline double hsum(__m256 v) {
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  double s = 0;
  for (float f : t) s += f;
  return s;
}

__attribute__((target("avx2,fma"))) double exp_shift_avx2(float* x, const float* src, int64_t n, float shift, bool store) {
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  double total = 0;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 y = exp8(_mm256_sub_ps(_mm256_loadu_ps(src + i), sh));
    if (store) _mm256_storeu_ps(x + i, y);
    acc = _mm256_add_ps(acc, y);
    if ((i & 1023) == 1016) total += hsum(acc), acc = _mm256_setzero_ps();  // keep float partial sums short
  }
  total += hsum(acc);
  for (; i < n; ++i) {
    const float y = std::exp(src[i] - shift);
    if (store) x[i] = y;
    total += y;
  }
  return total;
}

__attribute__((target("avx2,fma"))) void silu_mul_avx2(float* g, const float* u, int64_t n) {
  int64_t i = 0;
  const __m256 one = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_loadu_ps(g + i);
    const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), a));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(a, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

__attribute__((target("avx2,fma"))) float max_avx2(const float* x, int64_t n) {
  int64_t i = 0;
  float m = x[0];
  if (n >= 8) {
    __m256 v = _mm256_loadu_ps(x);
    for (i = 8; i + 8 <= n; i += 8) v = _mm256_max_ps(v, _mm256_loadu_ps(x + i));
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    m = *std::max_element(t, t + 8);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

}  // namespace

double exp_shift_inplace(float* x, int64_t n, float shift) {
  if (have_avx2()) return exp_shift_avx2(x, x, n, shift, true);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += (x[i] = std::exp(x[i] - shift));
  return s;
}

double exp_shift_sum(const float* x, int64_t n, float shift) {
  if (have_avx2()) return exp_shift_avx2(nullptr, x, n, shift, false);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(x[i] - shift);
  return s;
}

void silu_mul(float* g, const float* u, int64_t n) {
  if (have_avx2()) return silu_mul_avx2(g, u, n);
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

float max_of(const float* x, int64_t n) {
  if (have_avx2()) return max_avx2(x, n);
  return *std::max_element(x, x + n);
}

}  // namespace st::model
