// Row pruning rules of st-sparsify: magnitude, Wanda, N:M, protection, ties, partial groups.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "libst/sparsify.hpp"

namespace {

constexpr uint32_t kSeed = 4242;

std::vector<float> gaussian(int64_t n, int64_t k, uint32_t seed = kSeed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> w(static_cast<size_t>(n * k));
  for (auto& x : w) x = d(rng);
  return w;
}

int64_t zeros_in(const float* row, int64_t k) {
  return std::count(row, row + k, 0.f);
}

TEST(Sparsify, MagnitudeZeroesTheSmallestHalfOfEachRow) {
  const int64_t n = 7, k = 100;
  auto w = gaussian(n, k);
  const auto orig = w;
  st::PruneSpec s;
  s.method = st::SparsifyMethod::magnitude;
  s.ratio = 0.5;
  EXPECT_EQ(st::prune_rows(w.data(), n, k, nullptr, s, 3), static_cast<uint64_t>(n * 50));
  for (int64_t r = 0; r < n; ++r) {
    EXPECT_EQ(zeros_in(&w[r * k], k), 50);
    std::vector<float> mags;
    for (int64_t j = 0; j < k; ++j) mags.push_back(std::fabs(orig[r * k + j]));
    std::sort(mags.begin(), mags.end());
    const float thr = mags[49];
    for (int64_t j = 0; j < k; ++j) {
      if (std::fabs(orig[r * k + j]) <= thr) EXPECT_EQ(w[r * k + j], 0.f);
      else EXPECT_EQ(w[r * k + j], orig[r * k + j]);  // kept weights are untouched
    }
  }
}

TEST(Sparsify, WandaWeighsByTheInputNorm) {
  // Column 0 has a small weight but a huge input norm: Wanda keeps it, magnitude drops it.
  const int64_t k = 4;
  std::vector<float> w = {0.1f, 1.0f, -2.0f, 0.5f};
  const std::vector<float> norm = {100.f, 1.f, 1.f, 1.f};
  st::PruneSpec s;
  s.ratio = 0.5;
  auto wanda = w;
  s.method = st::SparsifyMethod::wanda;
  st::prune_rows(wanda.data(), 1, k, norm.data(), s, 1);
  EXPECT_EQ(wanda, (std::vector<float>{0.1f, 0.f, -2.0f, 0.f}));
  auto mag = w;
  s.method = st::SparsifyMethod::magnitude;
  st::prune_rows(mag.data(), 1, k, nullptr, s, 1);
  EXPECT_EQ(mag, (std::vector<float>{0.f, 1.0f, -2.0f, 0.f}));
}

TEST(Sparsify, NMKeepsNOfEveryMAndHandlesAPartialGroup) {
  const int64_t n = 5, k = 4 * 10 + 3;  // a last group of 3 loses floor(3 * 2 / 4) = 1
  auto w = gaussian(n, k, kSeed + 1);
  st::PruneSpec s;
  s.method = st::SparsifyMethod::nm;
  s.nm_n = 2;
  s.nm_m = 4;
  std::vector<float> norm(k, 1.f);
  const uint64_t pruned = st::prune_rows(w.data(), n, k, norm.data(), s, 2);
  EXPECT_EQ(pruned, static_cast<uint64_t>(n * (10 * 2 + 1)));
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t g = 0; g < 10; ++g) EXPECT_EQ(zeros_in(&w[r * k + g * 4], 4), 2) << "row " << r << " group " << g;
    EXPECT_EQ(zeros_in(&w[r * k + 40], 3), 1);
  }
}

TEST(Sparsify, ProtectKeepsTheLargestWeights) {
  // Wanda would drop the big weight in column 3 (tiny norm); protect 0.25 keeps the largest |W|.
  std::vector<float> w = {0.5f, 0.6f, 0.7f, 9.0f, 0.8f, 0.9f, 1.0f, 1.1f};
  const std::vector<float> norm = {1, 1, 1, 1e-4f, 1, 1, 1, 1};
  st::PruneSpec s;
  s.method = st::SparsifyMethod::wanda;
  s.ratio = 0.5;
  auto plain = w;
  st::prune_rows(plain.data(), 1, 8, norm.data(), s, 1);
  EXPECT_EQ(plain[3], 0.f);
  s.protect = 0.25;  // round(0.25 * 8) = 2 protected: 9.0 and 1.1
  auto prot = w;
  EXPECT_EQ(st::prune_rows(prot.data(), 1, 8, norm.data(), s, 1), 4u);
  EXPECT_EQ(prot, (std::vector<float>{0.f, 0.f, 0.f, 9.0f, 0.f, 0.9f, 1.0f, 1.1f}));
}

TEST(Sparsify, TiesBreakByColumnAndResultsDoNotDependOnThreads) {
  std::vector<float> w(16, 1.0f);
  st::PruneSpec s;
  s.method = st::SparsifyMethod::magnitude;
  s.ratio = 0.25;
  st::prune_rows(w.data(), 1, 16, nullptr, s, 1);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(w[j], j < 4 ? 0.f : 1.f);
  auto a = gaussian(64, 96), b = a;
  std::vector<float> norm(96);
  for (int j = 0; j < 96; ++j) norm[j] = 1.f + static_cast<float>(j % 7);
  s.method = st::SparsifyMethod::wanda;
  s.ratio = 0.5;
  st::prune_rows(a.data(), 64, 96, norm.data(), s, 1);
  st::prune_rows(b.data(), 64, 96, norm.data(), s, 5);
  EXPECT_EQ(a, b);
}

TEST(Sparsify, RatioZeroChangesNothingAndSpecsAreChecked) {
  auto w = gaussian(3, 10);
  const auto orig = w;
  st::PruneSpec s;
  s.ratio = 0;
  EXPECT_EQ(st::prune_rows(w.data(), 3, 10, nullptr, s, 1), 0u);
  EXPECT_EQ(w, orig);
  EXPECT_TRUE(st::check_prune_spec(s).ok());
  s.ratio = 1.0;
  EXPECT_FALSE(st::check_prune_spec(s).ok());
  s.ratio = 0.5;
  s.protect = -0.1;
  EXPECT_FALSE(st::check_prune_spec(s).ok());
  s.protect = 0;
  s.method = st::SparsifyMethod::nm;
  s.nm_n = 4;
  s.nm_m = 4;
  EXPECT_FALSE(st::check_prune_spec(s).ok());
  s.nm_n = 2;
  EXPECT_TRUE(st::check_prune_spec(s).ok());
}

}  // namespace
