// Exhaustive checks of the F16/BF16 <-> F32 conversions.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "libst/core/dtype.hpp"

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(DType, NamesRoundTrip) {
  for (const char* n : {"BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0",
                        "F8_E4M3FNUZ", "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64",
                        "F64", "I64", "U64"}) {
    auto t = st::dtype_from_name(n);
    ASSERT_TRUE(t) << n;
    EXPECT_STREQ(st::dtype_name(*t), n);
  }
  EXPECT_FALSE(st::dtype_from_name("f16"));
  EXPECT_EQ(st::dtype_bits(st::DType::F4), 4u);
  EXPECT_EQ(st::dtype_bits(st::DType::C64), 64u);
}

TEST(DType, AllF16PatternsRoundTripThroughF32) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = st::f16_to_f32(static_cast<uint16_t>(h));
    const uint16_t back = st::f32_to_f16(f);
    const bool nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
    if (nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_EQ(back & 0x7c00u, 0x7c00u);
      EXPECT_NE(back & 0x3ffu, 0u);
    } else {
      EXPECT_EQ(back, h) << "pattern " << h;
    }
  }
}

// The bulk F16 path (F16C where the CPU has it) gives the scalar conversion's exact bits, for
// every pattern and at every offset of a buffer whose length is no multiple of 8.
TEST(DType, BulkF16MatchesScalarBitForBit) {
  std::vector<uint16_t> all(65536 + 5);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i * 40503u);
  for (size_t off : {size_t(0), size_t(3)}) {
    std::vector<float> bulk(all.size() - off);
    ASSERT_TRUE(st::to_f32(st::DType::F16, all.data() + off, bulk.data(), bulk.size()));
    for (size_t i = 0; i < bulk.size(); ++i) {
      uint32_t a, b;
      const float want = st::f16_to_f32(all[off + i]);
      std::memcpy(&a, &bulk[i], 4);
      std::memcpy(&b, &want, 4);
      ASSERT_EQ(a, b) << "pattern " << all[off + i];
    }
  }
}

TEST(DType, AllBF16PatternsRoundTripThroughF32) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = st::bf16_to_f32(static_cast<uint16_t>(b));
    EXPECT_EQ(bits(f), b << 16);
    const uint16_t back = st::f32_to_bf16(f);
    if (std::isnan(f)) EXPECT_TRUE(std::isnan(st::bf16_to_f32(back)));
    else EXPECT_EQ(back, b) << "pattern " << b;
  }
}

TEST(DType, F16KnownValues) {
  EXPECT_EQ(st::f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(st::f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(st::f16_to_f32(0x7bff), 65504.0f);
  EXPECT_TRUE(std::isinf(st::f16_to_f32(0x7c00)));
  EXPECT_EQ(st::f32_to_f16(65519.0f), 0x7bff);  // below the halfway point to 65536
  EXPECT_EQ(st::f32_to_f16(65520.0f), 0x7c00);  // tie rounds to even: Inf
  EXPECT_EQ(st::f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);        // tie to even: zero
  EXPECT_EQ(st::f32_to_f16(std::ldexp(1.5f, -25)), 0x0001);        // above the tie
  EXPECT_EQ(st::f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even
  EXPECT_EQ(st::f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie to even, up
  EXPECT_EQ(st::f32_to_f16(-0.0f), 0x8000);
}

TEST(DType, F16RoundingMatchesNearestForAllF32Neighbours) {
  // Midpoints between consecutive finite f16 values, and one ulp either side of each.
  for (uint32_t h = 0; h < 0x7bff; ++h) {
    const float lo = st::f16_to_f32(static_cast<uint16_t>(h));
    const float hi = st::f16_to_f32(static_cast<uint16_t>(h + 1));
    const float mid = lo + (hi - lo) / 2;  // exact in f32
    const uint16_t even = (h & 1u) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    EXPECT_EQ(st::f32_to_f16(mid), even) << h;
    EXPECT_EQ(st::f32_to_f16(std::nextafter(mid, 0.0f)), h) << h;
    EXPECT_EQ(st::f32_to_f16(std::nextafter(mid, 1e9f)), h + 1) << h;
  }
}

TEST(DType, BF16RoundsToNearestEven) {
  EXPECT_EQ(st::f32_to_bf16(1.0f), 0x3f80);
  const float tie_down = st::bf16_to_f32(0x3f80) + std::ldexp(1.0f, -8);  // halfway to 0x3f81
  EXPECT_EQ(st::f32_to_bf16(tie_down), 0x3f80);
  const float tie_up = st::bf16_to_f32(0x3f81) + std::ldexp(1.0f, -8);
  EXPECT_EQ(st::f32_to_bf16(tie_up), 0x3f82);
  EXPECT_EQ(st::f32_to_bf16(3.4e38f), 0x7f80);  // overflows to Inf
}

TEST(DType, BulkConversion) {
  const uint16_t h[3] = {0x3c00, 0xc000, 0x0000};
  float out[3];
  ASSERT_TRUE(st::to_f32(st::DType::F16, h, out, 3));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  uint16_t back[3];
  ASSERT_TRUE(st::from_f32(st::DType::F16, out, back, 3));
  EXPECT_EQ(std::memcmp(h, back, 6), 0);
  EXPECT_FALSE(st::to_f32(st::DType::F4, h, out, 1));
  EXPECT_FALSE(st::from_f32(st::DType::I8, out, back, 1));
}

}  // namespace
