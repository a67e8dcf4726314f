// W8A8 arithmetic: scalar reference code plus AVX2/F16C row kernels with identical results.
#include "libst/quant/w8a8.hpp"

#include "libst/core/cpu.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <vector>

#include "libst/core/parallel.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace st::w8a8 {
namespace {

inline float load_scalar(DType src, const void* base, int64_t i) {
  switch (src) {
    case DType::F16: return f16_to_f32(load_unaligned<uint16_t>(base, static_cast<size_t>(i)));
    case DType::BF16: return bf16_to_f32(load_unaligned<uint16_t>(base, static_cast<size_t>(i)));
    default: return load_unaligned<float>(base, static_cast<size_t>(i));
  }
}

inline int8_t quantize_one(float x, float s) {
  float q = std::nearbyint(x / s);
  q = std::min(127.0f, std::max(-128.0f, q));
  return static_cast<int8_t>(q);
}

inline float row_scale(float absmax) { return std::max(absmax / 127.0f, kEps); }

// One row, scalar. Returns the column of the first non-finite value, or -1.
int64_t quantize_row_scalar(DType src, const void* w, int64_t row, int64_t k, int8_t* q, float* scale,
                            int64_t* row_sum) {
  const int64_t base = row * k;
  float mx = 0;
  for (int64_t j = 0; j < k; ++j) {
    const float x = load_scalar(src, w, base + j);
    if (!std::isfinite(x)) return j;
    mx = std::max(mx, std::fabs(x));
  }
  const float s = row_scale(mx);
  int64_t sum = 0;
  for (int64_t j = 0; j < k; ++j) {
    const int8_t v = quantize_one(load_scalar(src, w, base + j), s);
    q[base + j] = v;
    sum += v;
  }
  scale[row] = s;
  if (row_sum) row_sum[row] = sum;
  return -1;
}

#if defined(__x86_64__)
#define ST_AVX2 __attribute__((target("avx2,f16c")))

ST_AVX2 inline __m256 load8(DType src, const void* base, int64_t i) {
  switch (src) {
    case DType::F16:
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
    case DType::BF16: {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
      return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    default: return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  }
}

ST_AVX2 inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

ST_AVX2 inline int64_t hsum(__m256i v) {
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
  int64_t s = 0;
  for (int32_t x : t) s += x;
  return s;
}

// The same row as quantize_row_scalar, 8 lanes at a time (division and rounding are exact
// IEEE operations, so the results are bit-identical).
ST_AVX2 int64_t quantize_row_avx2(DType src, const void* w, int64_t row, int64_t k, int8_t* q, float* scale,
                                  int64_t* row_sum) {
  const int64_t base = row * k;
  const int64_t k8 = k / 8 * 8;
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 inf = _mm256_set1_ps(std::numeric_limits<float>::infinity());
  __m256 mxv = _mm256_setzero_ps();
  __m256 bad = _mm256_setzero_ps();
  for (int64_t j = 0; j < k8; j += 8) {
    const __m256 a = _mm256_and_ps(load8(src, w, base + j), absmask);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
    mxv = _mm256_max_ps(mxv, a);
  }
  if (_mm256_movemask_ps(bad)) {
    for (int64_t j = 0; j < k8; ++j)
      if (!std::isfinite(load_scalar(src, w, base + j))) return j;
  }
  float mx = hmax(mxv);
  for (int64_t j = k8; j < k; ++j) {
    const float x = load_scalar(src, w, base + j);
    if (!std::isfinite(x)) return j;
    mx = std::max(mx, std::fabs(x));
  }
  const float s = row_scale(mx);
  const __m256 sv = _mm256_set1_ps(s);
  const __m256 lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
  __m256i sumv = _mm256_setzero_si256();
  for (int64_t j = 0; j < k8; j += 8) {
    __m256 x = _mm256_div_ps(load8(src, w, base + j), sv);
    x = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    const __m256i v = _mm256_cvtps_epi32(x);
    sumv = _mm256_add_epi32(sumv, v);
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + base + j), _mm_packs_epi16(w16, w16));
  }
  int64_t sum = hsum(sumv);
  for (int64_t j = k8; j < k; ++j) {
    const int8_t v = quantize_one(load_scalar(src, w, base + j), s);
    q[base + j] = v;
    sum += v;
  }
  scale[row] = s;
  if (row_sum) row_sum[row] = sum;
  return -1;
}

bool have_avx2() {
  return cpu_features().avx2 && cpu_features().f16c;
}
#endif

}  // namespace

float round_to(DType dtype, float v) {
  switch (dtype) {
    case DType::F16: return f16_to_f32(f32_to_f16(v));
    case DType::BF16: return bf16_to_f32(f32_to_bf16(v));
    default: return v;
  }
}

Result<ActivationParams> activation_params(float min_x, float max_x, DType model_dtype) {
  if (!std::isfinite(min_x) || !std::isfinite(max_x))
    return make_error(Errc::numeric, "activation range is not finite (min " + std::to_string(min_x) + ", max " +
                                         std::to_string(max_x) + ")");
  if (min_x > max_x)
    return make_error(Errc::numeric, "activation range has min " + std::to_string(min_x) + " > max " +
                                         std::to_string(max_x));
  const float lo = std::min(min_x, 0.0f), hi = std::max(max_x, 0.0f);
  const float raw = std::max((hi - lo) / 255.0f, kEps);
  ActivationParams p;
  p.scale = round_to(model_dtype, raw);
  if (!std::isfinite(p.scale) || p.scale <= 0)
    return make_error(Errc::numeric, std::string("input_scale ") + std::to_string(raw) + " does not fit " +
                                         dtype_name(model_dtype));
  const float off = std::nearbyint(-lo / p.scale) - 128.0f;
  p.offset = std::min(127.0f, std::max(-128.0f, off));
  return p;
}

namespace {
using RowFn = int64_t (*)(DType, const void*, int64_t, int64_t, int8_t*, float*, int64_t*);
RowFn row_quantizer() {
#if defined(__x86_64__)
  if (have_avx2()) return quantize_row_avx2;
#endif
  return quantize_row_scalar;
}

// The lowest row with a NaN or Inf, over chunks that each stop at their first.
class FirstBadWeight {
 public:
  explicit FirstBadWeight(int64_t n) : row_(n), n_(n) {}
  void found(int64_t row, int64_t col, float x) {
    std::lock_guard<std::mutex> lock(mu_);
    if (row < row_) row_ = row, col_ = col, x_ = x;
  }
  Status status() const {
    if (row_ >= n_) return Status{};
    return make_error(Errc::numeric, std::string(std::isnan(x_) ? "NaN" : "Inf") + " weight at [" +
                                         std::to_string(row_) + ", " + std::to_string(col_) + "]");
  }

 private:
  std::mutex mu_;
  int64_t row_, n_, col_ = -1;
  float x_ = 0;
};

// Enough rows per thread to pay for starting it.
int64_t min_rows_per_thread(int64_t k) { return std::max<int64_t>(1, 65536 / std::max<int64_t>(k, 1)); }
}  // namespace

Status quantize_rows(DType src, const void* w, int64_t n, int64_t k, int8_t* q, float* scale, int64_t* row_sum) {
  if (src != DType::F16 && src != DType::BF16 && src != DType::F32)
    return make_error(Errc::unsupported, std::string("cannot quantize a weight of dtype ") + dtype_name(src));
  if (n <= 0) return Status{};
  const RowFn row_fn = row_quantizer();
  FirstBadWeight bad(n);
  parallel_for(
      n,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t c = row_fn(src, w, r, k, q, scale, row_sum);
          if (c >= 0) return bad.found(r, c, load_scalar(src, w, r * k + c));
        }
      },
      min_rows_per_thread(k));
  return bad.status();
}

Status quantize_rows(const RowSource& rows, int64_t n, int64_t k, int8_t* q, float* scale, int64_t* row_sum) {
  if (n <= 0) return Status{};
  const RowFn row_fn = row_quantizer();
  const int64_t tile = std::max<int64_t>(1, 16384 / std::max<int64_t>(k, 1));  // 64 KiB of fp32 rows
  FirstBadWeight bad(n);
  parallel_for(
      n,
      [&](int64_t r0, int64_t r1) {
        std::vector<float> buf(static_cast<size_t>(std::min(tile, r1 - r0) * k));
        for (int64_t t0 = r0; t0 < r1; t0 += tile) {
          const int64_t t1 = std::min(r1, t0 + tile);
          rows(t0, t1, buf.data());
          for (int64_t r = t0; r < t1; ++r) {
            const int64_t c =
                row_fn(DType::F32, buf.data(), r - t0, k, q + t0 * k, scale + t0, row_sum ? row_sum + t0 : nullptr);
            if (c >= 0) return bad.found(r, c, buf[static_cast<size_t>((r - t0) * k + c)]);
          }
        }
      },
      min_rows_per_thread(k));
  return bad.status();
}

void deq_scale(float input_scale, const float* weight_scale, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = input_scale * weight_scale[i];
}

DType deq_scale_dtype(DType model_dtype) { return model_dtype == DType::F16 ? DType::I64 : DType::F32; }

void encode_deq_scale(DType model_dtype, const float* deq, int64_t n, void* out) {
  if (model_dtype == DType::F16) {
    auto* o = static_cast<int64_t*>(out);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &deq[i], 4);
      o[i] = static_cast<int64_t>(bits);
    }
  } else {
    std::memcpy(out, deq, static_cast<size_t>(n) * 4);
  }
}

Status quant_bias(const float* bias, const float* deq, const int64_t* row_sum, float input_offset, int64_t n,
                  int32_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const double b = bias ? static_cast<double>(bias[i]) : 0.0;
    if (!std::isfinite(b)) return make_error(Errc::numeric, "bias is not finite at [" + std::to_string(i) + "]");
    const double v =
        std::nearbyint(b / static_cast<double>(deq[i]) - static_cast<double>(input_offset) * static_cast<double>(row_sum[i]));
    if (!(v >= -2147483648.0 && v <= 2147483647.0))
      return make_error(Errc::numeric, "quant_bias does not fit int32 at [" + std::to_string(i) + "] (" +
                                           std::to_string(v) + ")");
    out[i] = static_cast<int32_t>(v);
  }
  return Status{};
}

void GroupRanges::add(const std::string& group, float lo, float hi) {
  const auto it = range_.find(group);
  if (it == range_.end())
    range_[group] = {lo, hi};
  else
    it->second = {std::min(it->second.first, lo), std::max(it->second.second, hi)};
}

Result<std::map<std::string, ActivationParams>> GroupRanges::params(DType model_dtype,
                                                                    const std::string& stats_path) const {
  std::map<std::string, ActivationParams> out;
  for (const auto& [group, r] : range_) {
    auto act = activation_params(r.first, r.second, model_dtype);
    if (!act) return std::move(act.error()).in_file(stats_path).in_tensor(group);
    out[group] = *act;
  }
  return out;
}

}  // namespace st::w8a8
