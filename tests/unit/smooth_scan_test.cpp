// The alpha search's weight scans (libst/quant/smooth_scan.hpp): the AVX2 versions give the same
// bits as the portable ones for odd widths, strides and candidate counts, skip NaN weights, and
// the portable ones compute what their comments say.
#include "libst/quant/smooth_scan.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace st {
namespace {

std::vector<float> weights(int64_t rows, int64_t ld, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  std::vector<float> w(size_t(rows * ld));
  for (auto& x : w) x = nd(rng);
  if (w.size() > 40) w[7] = NAN, w[23] = -INFINITY, w[31] = -0.0f, w[39] = 3e38f;
  return w;
}

TEST(SmoothScan, ColumnsSameBitsEitherWayAndAsDefined) {
  for (auto [rows, ld, cols] : {std::array<int64_t, 3>{1, 1, 1}, {3, 9, 9}, {8, 20, 13}, {5, 600, 517}}) {
    const auto w = weights(rows, ld, unsigned(rows * 1000 + cols));
    std::vector<float> m1(size_t(cols), 0.5f), m2 = m1;
    std::vector<double> s1(size_t(cols), 1.0), s2 = s1;
    scan_columns(w.data(), rows, ld, cols, m1.data(), s1.data(), true);
    scan_columns(w.data(), rows, ld, cols, m2.data(), s2.data(), false);
    EXPECT_EQ(0, std::memcmp(m1.data(), m2.data(), m1.size() * 4)) << rows << "x" << cols;
    for (int64_t j = 0; j < cols; ++j) {
      EXPECT_TRUE(std::memcmp(&s1[j], &s2[j], 8) == 0 || (std::isnan(s1[j]) && std::isnan(s2[j]))) << j;
      float m = 0.5f;
      double s = 1.0;
      for (int64_t r = 0; r < rows; ++r) {
        const float v = w[size_t(r * ld + j)];
        if (std::fabs(v) > m) m = std::fabs(v);  // NaN compares false: skipped
        s += double(v) * v;
      }
      EXPECT_EQ(m2[j], m) << j;
      if (!std::isnan(s)) {
        EXPECT_EQ(s2[j], s) << j;
      }
    }
  }
}

TEST(SmoothScan, RowsSameBitsEitherWayForAnyCandidateCount) {
  for (auto [rows, ld, cols] : {std::array<int64_t, 3>{1, 1, 1}, {3, 9, 9}, {8, 20, 13}, {4, 512, 512}, {2, 700, 517}})
    for (int nc : {1, 3, 8, 9, 11}) {
      const auto w = weights(rows, ld, unsigned(nc * 77 + cols));
      std::mt19937 rng{unsigned(nc)};
      std::uniform_real_distribution<float> ud(1e-4f, 1e4f);
      std::vector<std::vector<float>> s(size_t(nc), std::vector<float>(size_t(cols), 0.0f));
      std::vector<const float*> sp;
      for (auto& v : s) {
        for (auto& x : v) x = ud(rng);
        sp.push_back(v.data());
      }
      std::vector<float> r1(size_t(rows * nc), 0.25f), r2 = r1;
      scan_rows(w.data(), rows, ld, cols, sp.data(), nc, r1.data(), true);
      scan_rows(w.data(), rows, ld, cols, sp.data(), nc, r2.data(), false);
      EXPECT_EQ(0, std::memcmp(r1.data(), r2.data(), r1.size() * 4)) << rows << "x" << cols << " nc=" << nc;
      for (int64_t r = 0; r < rows; ++r)
        for (int c = 0; c < nc; ++c) {
          float m = 0.25f;
          for (int64_t j = 0; j < cols; ++j) {
            const float v = std::fabs(w[size_t(r * ld + j)] * s[size_t(c)][size_t(j)]);
            if (v > m) m = v;
          }
          EXPECT_EQ(r2[size_t(r * nc + c)], m) << r << "," << c;
        }
    }
}

}  // namespace
}  // namespace st
