// Dtype names, sizes and the bit-exact F16/BF16 <-> F32 conversions.
#include "libst/core/dtype.hpp"

#include <array>
#include <cstring>

#include "libst/core/cpu.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace st {
namespace {

struct DTypeInfo {
  DType type;
  const char* name;
  unsigned bits;
};

constexpr DTypeInfo kTypes[] = {
    {DType::BOOL, "BOOL", 8},          {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6},    {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::U8, "U8", 8},              {DType::I8, "I8", 8},
    {DType::F8_E5M2, "F8_E5M2", 8},    {DType::F8_E4M3, "F8_E4M3", 8},
    {DType::F8_E8M0, "F8_E8M0", 8},    {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8}, {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},           {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},         {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},           {DType::F32, "F32", 32},
    {DType::C64, "C64", 64},           {DType::F64, "F64", 64},
    {DType::I64, "I64", 64},           {DType::U64, "U64", 64},
};

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <class T, class F>
void convert_loop(const void* src, float* dst, size_t n, F f) {
  for (size_t i = 0; i < n; ++i) dst[i] = f(load_unaligned<T>(src, i));
}

}  // namespace

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& t : kTypes)
    if (name == t.name) return t.type;
  return std::nullopt;
}

const char* dtype_name(DType t) { return kTypes[static_cast<size_t>(t)].name; }
unsigned dtype_bits(DType t) { return kTypes[static_cast<size_t>(t)].bits; }
bool dtype_is_float(DType t) {
  return t == DType::F16 || t == DType::BF16 || t == DType::F32 || t == DType::F64;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return float_of(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0));
  if (exp != 0) return float_of(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return float_of(sign);
  // Subnormal: normalise the mantissa.
  int e = 113;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  return float_of(sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3ffu) << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = bits_of(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u | static_cast<uint16_t>((abs >> 13) & 0x3ffu);  // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: Inf
  if (abs < 0x38800000u) {
    // Result is subnormal or zero: value = abs * 2^24 in units of the f16 subnormal step.
    if (abs < 0x33000000u) return sign;  // < 2^-25 rounds to zero (2^-25 itself ties to even 0)
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exp;  // 14..24: bits to drop below the subnormal step
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return sign | static_cast<uint16_t>(q);
  }
  uint32_t v = abs - 0x38000000u;  // rebias exponent 127 -> 15
  const uint32_t rem = v & 0x1fffu;
  v >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) ++v;
  return sign | static_cast<uint16_t>(v);
}

float bf16_to_f32(uint16_t b) { return float_of(static_cast<uint32_t>(b) << 16); }

uint16_t f32_to_bf16(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

float f8_e4m3_to_f32(uint8_t b) {
  const uint32_t sign = static_cast<uint32_t>(b & 0x80u) << 24;
  const uint32_t exp = (b >> 3) & 0xfu, mant = b & 0x7u;
  if (exp == 0xf && mant == 0x7) return float_of(sign | 0x7fc00000u);  // the only NaN
  if (exp != 0) return float_of(sign | ((exp + 120) << 23) | (mant << 20));
  // Subnormal: mant * 2^-9, exact in fp32.
  const float v = static_cast<float>(mant) * 0x1p-9f;
  return sign ? -v : v;
}

float f8_e5m2_to_f32(uint8_t b) { return f16_to_f32(static_cast<uint16_t>(b << 8)); }

namespace {
template <float (*F)(uint8_t)>
const float* f8_table() {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (unsigned b = 0; b < 256; ++b) t[b] = F(static_cast<uint8_t>(b));
    return t;
  }();
  return table.data();
}
void f8_loop(const float* table, const void* src, float* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  for (size_t i = 0; i < n; ++i) dst[i] = table[s[i]];
}
}  // namespace

namespace {
#if defined(__x86_64__)
// F16C's vcvtph2ps converts exactly as f16_to_f32 does (NaNs come out quiet in both), 8 at a time.
__attribute__((target("f16c,avx"))) void f16_to_f32_f16c(const void* src, float* dst, size_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i))));
  convert_loop<uint16_t>(s + 2 * i, dst + i, n - i, f16_to_f32);
}
bool have_f16c() {
  static const bool yes = cpu_features().f16c && cpu_features().avx;
  return yes;
}
#endif
}  // namespace

bool to_f32(DType src_type, const void* src, float* dst, size_t n) {
  switch (src_type) {
    case DType::F32: std::memcpy(dst, src, n * 4); return true;
    case DType::F16:
#if defined(__x86_64__)
      if (have_f16c()) {
        f16_to_f32_f16c(src, dst, n);
        return true;
      }
#endif
      convert_loop<uint16_t>(src, dst, n, f16_to_f32);
      return true;
    case DType::BF16: convert_loop<uint16_t>(src, dst, n, bf16_to_f32); return true;
    case DType::F8_E4M3: f8_loop(f8_table<f8_e4m3_to_f32>(), src, dst, n); return true;
    case DType::F8_E5M2: f8_loop(f8_table<f8_e5m2_to_f32>(), src, dst, n); return true;
    case DType::F64: convert_loop<double>(src, dst, n, [](double v) { return static_cast<float>(v); }); return true;
    case DType::I8: convert_loop<int8_t>(src, dst, n, [](int8_t v) { return float(v); }); return true;
    case DType::U8: convert_loop<uint8_t>(src, dst, n, [](uint8_t v) { return float(v); }); return true;
    case DType::I16: convert_loop<int16_t>(src, dst, n, [](int16_t v) { return float(v); }); return true;
    case DType::U16: convert_loop<uint16_t>(src, dst, n, [](uint16_t v) { return float(v); }); return true;
    case DType::I32: convert_loop<int32_t>(src, dst, n, [](int32_t v) { return float(v); }); return true;
    case DType::U32: convert_loop<uint32_t>(src, dst, n, [](uint32_t v) { return float(v); }); return true;
    case DType::I64: convert_loop<int64_t>(src, dst, n, [](int64_t v) { return float(v); }); return true;
    case DType::U64: convert_loop<uint64_t>(src, dst, n, [](uint64_t v) { return float(v); }); return true;
    default: return false;
  }
}

bool from_f32(DType dst_type, const float* src, void* dst, size_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  switch (dst_type) {
    case DType::F32: std::memcpy(dst, src, n * 4); return true;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
      return true;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return true;
    default: return false;
  }
}

}  // namespace st
