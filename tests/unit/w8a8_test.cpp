// W8A8 formulas on synthetic tensors: odd shapes, zero rows, ties, NaN, vector = scalar.
#include "libst/quant/w8a8.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "st_test_util.hpp"

namespace st::w8a8 {
namespace {

// Straight from DESIGN.md, one element at a time.
void reference(const std::vector<float>& w, int64_t n, int64_t k, std::vector<int8_t>& q, std::vector<float>& s,
               std::vector<int64_t>& sums) {
  q.assign(n * k, 0);
  s.assign(n, 0);
  sums.assign(n, 0);
  for (int64_t r = 0; r < n; ++r) {
    float mx = 0;
    for (int64_t j = 0; j < k; ++j) mx = std::max(mx, std::fabs(w[r * k + j]));
    s[r] = std::max(mx / 127.0f, FLT_EPSILON);
    for (int64_t j = 0; j < k; ++j) {
      const float v = std::min(127.0f, std::max(-128.0f, std::nearbyint(w[r * k + j] / s[r])));
      q[r * k + j] = static_cast<int8_t>(v);
      sums[r] += static_cast<int64_t>(v);
    }
  }
}

std::vector<uint16_t> to_f16(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = f32_to_f16(v[i]);
  return h;
}

TEST(W8A8, RowsMatchReferenceAllDtypesOddShapes) {
  std::mt19937 rng(12345);  // fixed seed: 12345
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {17, 33}, {64, 256}, {5, 1031}, {129, 8}}) {
    for (DType dt : {DType::F16, DType::BF16, DType::F32}) {
      std::vector<float> w(n * k);
      for (auto& x : w) x = round_to(dt, nd(rng));
      if (n > 2) std::fill(w.begin() + k, w.begin() + 2 * k, 0.0f);  // a zero row
      std::vector<uint16_t> h(w.size());
      const void* src = w.data();
      if (dt == DType::F16) h = to_f16(w), src = h.data();
      if (dt == DType::BF16) {
        for (size_t i = 0; i < w.size(); ++i) h[i] = f32_to_bf16(w[i]);
        src = h.data();
      }
      std::vector<int8_t> q(n * k), rq;
      std::vector<float> s(n), rs;
      std::vector<int64_t> sums(n), rsums;
      for (int threads : {1, 3}) {
        st_test::ThreadCount t(threads);
        ASSERT_TRUE(quantize_rows(dt, src, n, k, q.data(), s.data(), sums.data()).ok());
        reference(w, n, k, rq, rs, rsums);
        EXPECT_EQ(q, rq) << "n=" << n << " k=" << k << " dt=" << dtype_name(dt);
        EXPECT_EQ(0, std::memcmp(s.data(), rs.data(), n * 4));
        EXPECT_EQ(sums, rsums);
      }
      if (n > 2) {
        EXPECT_EQ(s[1], FLT_EPSILON);  // zero row: scale floored, all zeros
        for (int64_t j = 0; j < k; ++j) EXPECT_EQ(q[k + j], 0);
      }
    }
  }
}

TEST(W8A8, ExtremesAndTies) {
  // Row max maps to exactly +-127; 0.5 steps round half to even.
  const std::vector<float> w = {127.0f, -127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 3.0f};
  std::vector<int8_t> q(8);
  float s;
  int64_t sum;
  ASSERT_TRUE(quantize_rows(DType::F32, w.data(), 1, 8, q.data(), &s, &sum).ok());
  EXPECT_EQ(s, 1.0f);
  EXPECT_EQ(q, (std::vector<int8_t>{127, -127, 0, 2, 2, 0, -2, 3}));
  EXPECT_EQ(sum, 127 - 127 + 0 + 2 + 2 + 0 - 2 + 3);
}

TEST(W8A8, NonFiniteWeightNamesPosition) {
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> w(4 * 20, 0.25f);
    w[2 * 20 + 13] = bad;
    const auto h = to_f16(w);
    std::vector<int8_t> q(w.size());
    std::vector<float> s(4);
    for (DType dt : {DType::F32, DType::F16}) {
      const void* src = dt == DType::F32 ? static_cast<const void*>(w.data()) : h.data();
      auto st = quantize_rows(dt, src, 4, 20, q.data(), s.data(), nullptr);
      ASSERT_FALSE(st.ok());
      EXPECT_EQ(st.error().code, Errc::numeric);
      EXPECT_NE(st.error().message.find("[2, 13]"), std::string::npos) << st.error().message;
    }
  }
  std::vector<float> w(3, 1.0f);
  EXPECT_FALSE(quantize_rows(DType::I8, w.data(), 1, 3, nullptr, nullptr, nullptr).ok());
}

// From fp32 rows handed over a few at a time: the same results as from the whole weight, and a
// NaN is reported at its position in the weight, not in the tile.
TEST(W8A8, RowSourceMatchesTheWholeWeight) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{1, 1}, {17, 33}, {300, 100}, {9, 5000}}) {
    std::vector<float> w(size_t(n * k));
    for (auto& x : w) x = nd(rng);
    std::vector<int8_t> q(w.size()), rq(w.size());
    std::vector<float> s(n), rs(n);
    std::vector<int64_t> sums(n), rsums(n);
    const RowSource rows = [&](int64_t r0, int64_t r1, float* dst) {
      std::copy(w.begin() + r0 * k, w.begin() + r1 * k, dst);
    };
    for (int threads : {1, 3}) {
      st_test::ThreadCount t(threads);
      ASSERT_TRUE(quantize_rows(DType::F32, w.data(), n, k, rq.data(), rs.data(), rsums.data()).ok());
      ASSERT_TRUE(quantize_rows(rows, n, k, q.data(), s.data(), sums.data()).ok());
      EXPECT_EQ(q, rq) << n << "x" << k;
      EXPECT_EQ(0, std::memcmp(s.data(), rs.data(), size_t(n) * 4));
      EXPECT_EQ(sums, rsums);
    }
    if (n < 300) continue;
    w[size_t(250 * k + 42)] = NAN;
    w[size_t(251 * k + 3)] = INFINITY;
    auto st = quantize_rows(rows, n, k, q.data(), s.data(), nullptr);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("NaN weight at [250, 42]"), std::string::npos) << st.error().message;
  }
}

TEST(W8A8, ActivationParams) {
  // Range widened to include 0; scale rounded to the model dtype; offset from the stored scale.
  auto p = activation_params(-1.0f, 3.0f, DType::F32);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->scale, 4.0f / 255.0f);
  EXPECT_EQ(p->offset, std::nearbyint(1.0f / (4.0f / 255.0f)) - 128.0f);
  auto pos = activation_params(0.5f, 2.0f, DType::F16);  // lo widened to 0 -> offset -128
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(pos->offset, -128.0f);
  EXPECT_EQ(pos->scale, f16_to_f32(f32_to_f16(2.0f / 255.0f)));
  auto neg = activation_params(-2.0f, -0.5f, DType::BF16);  // hi widened to 0 -> offset 127
  ASSERT_TRUE(neg.ok());
  EXPECT_EQ(neg->scale, bf16_to_f32(f32_to_bf16(2.0f / 255.0f)));
  EXPECT_EQ(neg->offset, std::min(127.0f, std::nearbyint(2.0f / neg->scale) - 128.0f));
  EXPECT_GE(neg->offset, 120.0f);
  auto zero = activation_params(0.0f, 0.0f, DType::F32);  // floored at eps
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->scale, FLT_EPSILON);
  EXPECT_FALSE(activation_params(NAN, 1.0f, DType::F16).ok());
  EXPECT_FALSE(activation_params(0.0f, INFINITY, DType::F16).ok());
  EXPECT_FALSE(activation_params(2.0f, 1.0f, DType::F16).ok());
  auto big = activation_params(-1e9f, 1e9f, DType::F16);  // scale overflows fp16
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::numeric);
}

TEST(W8A8, DeqScaleEncodingAndQuantBias) {
  const float ws[3] = {0.5f, 0.25f, FLT_EPSILON};
  float deq[3];
  deq_scale(0.125f, ws, 3, deq);
  EXPECT_EQ(deq[0], 0.0625f);
  EXPECT_EQ(deq_scale_dtype(DType::F16), DType::I64);
  EXPECT_EQ(deq_scale_dtype(DType::BF16), DType::F32);
  int64_t packed[3];
  encode_deq_scale(DType::F16, deq, 3, packed);
  uint32_t bits;
  std::memcpy(&bits, &deq[1], 4);
  EXPECT_EQ(packed[1], static_cast<int64_t>(bits));
  EXPECT_EQ(packed[1] >> 32, 0);
  float plain[3];
  encode_deq_scale(DType::BF16, deq, 3, plain);
  EXPECT_EQ(std::memcmp(plain, deq, 12), 0);

  const int64_t sums[3] = {10, -4, 0};
  const float bias[3] = {1.0f, -0.3f, 0.0f};
  int32_t qb[3];
  ASSERT_TRUE(quant_bias(bias, deq, sums, -3.0f, 3, qb).ok());
  EXPECT_EQ(qb[0], static_cast<int32_t>(std::nearbyint(1.0 / deq[0] + 3.0 * 10)));
  EXPECT_EQ(qb[1], static_cast<int32_t>(std::nearbyint(-0.3f / static_cast<double>(deq[1]) + 3.0 * -4)));
  ASSERT_TRUE(quant_bias(nullptr, deq, sums, 5.0f, 3, qb).ok());  // no bias
  EXPECT_EQ(qb[0], -50);
  EXPECT_EQ(qb[1], 20);
  const float huge[1] = {1e30f};
  EXPECT_FALSE(quant_bias(huge, deq, sums, 0.0f, 1, qb).ok());
}

}  // namespace
}  // namespace st::w8a8
