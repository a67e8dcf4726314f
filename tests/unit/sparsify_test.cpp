// Row pruning rules of st-sparsify: magnitude, Wanda, N:M, protection, ties, partial groups.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "libst/sparse/sparsify.hpp"
#include "st_test_util.hpp"

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
  EXPECT_EQ(st::prune_rows(w.data(), n, k, nullptr, s), static_cast<uint64_t>(n * 50));
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
  st::prune_rows(wanda.data(), 1, k, norm.data(), s);
  EXPECT_EQ(wanda, (std::vector<float>{0.1f, 0.f, -2.0f, 0.f}));
  auto mag = w;
  s.method = st::SparsifyMethod::magnitude;
  st::prune_rows(mag.data(), 1, k, nullptr, s);
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
  const uint64_t pruned = st::prune_rows(w.data(), n, k, norm.data(), s);
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
  st::prune_rows(plain.data(), 1, 8, norm.data(), s);
  EXPECT_EQ(plain[3], 0.f);
  s.protect = 0.25;  // round(0.25 * 8) = 2 protected: 9.0 and 1.1
  auto prot = w;
  EXPECT_EQ(st::prune_rows(prot.data(), 1, 8, norm.data(), s), 4u);
  EXPECT_EQ(prot, (std::vector<float>{0.f, 0.f, 0.f, 9.0f, 0.f, 0.9f, 1.0f, 1.1f}));
}

TEST(Sparsify, TiesBreakByColumnAndResultsDoNotDependOnThreads) {
  std::vector<float> w(16, 1.0f);
  st::PruneSpec s;
  s.method = st::SparsifyMethod::magnitude;
  s.ratio = 0.25;
  st::prune_rows(w.data(), 1, 16, nullptr, s);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(w[j], j < 4 ? 0.f : 1.f);
  auto a = gaussian(64, 96), b = a;
  std::vector<float> norm(96);
  for (int j = 0; j < 96; ++j) norm[j] = 1.f + static_cast<float>(j % 7);
  s.method = st::SparsifyMethod::wanda;
  s.ratio = 0.5;
  {
    st_test::ThreadCount one(1);
    st::prune_rows(a.data(), 64, 96, norm.data(), s);
  }
  st_test::ThreadCount five(5);
  st::prune_rows(b.data(), 64, 96, norm.data(), s);
  EXPECT_EQ(a, b);
}

TEST(Sparsify, RatioZeroChangesNothingAndSpecsAreChecked) {
  auto w = gaussian(3, 10);
  const auto orig = w;
  st::PruneSpec s;
  s.ratio = 0;
  EXPECT_EQ(st::prune_rows(w.data(), 3, 10, nullptr, s), 0u);
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

// SparseGPT: with an identity Gram matrix there is nothing to compensate and each block of 128
// columns keeps its largest half; with correlated inputs it beats Wanda on the output error.
#include "libst/sparse/sparsegpt.hpp"

namespace {

TEST(SparseGPT, IdentityGramIsBlockwiseMagnitude) {
  const int64_t n = 6, k = 256;
  auto w = gaussian(n, k, kSeed + 7);
  const auto orig = w;
  std::vector<double> h(static_cast<size_t>(k * k), 0.0);
  for (int64_t j = 0; j < k; ++j) h[j * k + j] = 3.0;
  st::PruneSpec s;
  s.method = st::SparsifyMethod::sparsegpt;
  s.ratio = 0.5;
  auto pruned = st::sparsegpt_prune(w.data(), n, k, h.data(), s);
  ASSERT_TRUE(pruned.ok()) << pruned.error().str();
  EXPECT_EQ(*pruned, static_cast<uint64_t>(n * k / 2));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t b = 0; b < 2; ++b) {
      std::vector<float> mags;
      for (int64_t j = b * 128; j < b * 128 + 128; ++j) mags.push_back(std::fabs(orig[r * k + j]));
      std::sort(mags.begin(), mags.end());
      for (int64_t j = b * 128; j < b * 128 + 128; ++j) {
        const bool small = std::fabs(orig[r * k + j]) <= mags[63];
        EXPECT_EQ(w[r * k + j], small ? 0.f : orig[r * k + j]) << r << "," << j;
      }
    }
}

TEST(SparseGPT, CompensationBeatsWandaOnCorrelatedInputs) {
  const int64_t n = 16, k = 64, tokens = 512;
  std::mt19937 rng(kSeed + 9);
  std::normal_distribution<float> d(0.f, 1.f);
  // Inputs with strongly correlated neighbouring channels and uneven scales.
  std::vector<float> x(static_cast<size_t>(tokens * k));
  for (int64_t t = 0; t < tokens; ++t) {
    float prev = d(rng);
    for (int64_t j = 0; j < k; ++j) {
      prev = 0.8f * prev + 0.6f * d(rng);
      x[t * k + j] = prev * (1.f + static_cast<float>(j % 5));
    }
  }
  std::vector<double> h(static_cast<size_t>(k * k), 0.0);
  std::vector<float> norm(k, 0.f);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t i = 0; i < k; ++i) {
      norm[i] += x[t * k + i] * x[t * k + i];
      for (int64_t j = i; j < k; ++j) h[i * k + j] += static_cast<double>(x[t * k + i]) * x[t * k + j];
    }
  for (auto& v : norm) v = std::sqrt(v);
  const auto w = gaussian(n, k, kSeed + 10);
  auto err = [&](const std::vector<float>& q) {
    double e = 0;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t r = 0; r < n; ++r) {
        double y = 0;
        for (int64_t j = 0; j < k; ++j) y += static_cast<double>(x[t * k + j]) * (w[r * k + j] - q[r * k + j]);
        e += y * y;
      }
    return e;
  };
  st::PruneSpec s;
  s.ratio = 0.5;
  auto wanda = w;
  s.method = st::SparsifyMethod::wanda;
  st::prune_rows(wanda.data(), n, k, norm.data(), s);
  auto sgpt = w;
  s.method = st::SparsifyMethod::sparsegpt;
  ASSERT_TRUE(st::sparsegpt_prune(sgpt.data(), n, k, h.data(), s).ok());
  for (int64_t r = 0; r < n; ++r) EXPECT_EQ(zeros_in(&sgpt[r * k], k), k / 2);
  EXPECT_LT(err(sgpt), 0.8 * err(wanda)) << "sparsegpt " << err(sgpt) << " wanda " << err(wanda);
  // N:M with SparseGPT keeps the structure.
  auto nm = w;
  s.method = st::SparsifyMethod::nm;
  ASSERT_TRUE(st::sparsegpt_prune(nm.data(), n, k, h.data(), s).ok());
  for (int64_t i = 0; i < n * k; i += 4) EXPECT_EQ(zeros_in(&nm[i], 4), 2);
}

TEST(SparseGPT, RejectsAnIndefiniteGram) {
  const int64_t k = 2;
  std::vector<double> h = {1.0, 5.0, 5.0, 1.0};  // eigenvalues 6 and -4
  std::vector<float> w = {1.f, 2.f};
  st::PruneSpec s;
  s.method = st::SparsifyMethod::sparsegpt;
  auto r = st::sparsegpt_prune(w.data(), 1, k, h.data(), s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, st::Errc::numeric);
}

}  // namespace

// The memory estimate behind the default's SparseGPT-or-Wanda choice: one layer's k x k double
// matrices, one per fused group (llama-4m: q/k/v, o, gate/up read 256 channels, down 688), per worker.
TEST(SparseGPT, GramBytesCountsOneMatrixPerGroupAndWorker) {
  auto ck = st::Checkpoint::open(std::string(ST_FIXTURES) + "/llama-4m-fp16");
  ASSERT_TRUE(ck);
  auto arch = st::Architecture::of(**ck);
  ASSERT_TRUE(arch);
  const uint64_t per_layer = (3 * 256 * 256 + 688 * 688) * sizeof(double);
  EXPECT_EQ(st::gram_bytes(*arch, 1), per_layer);
  EXPECT_EQ(st::gram_bytes(*arch, 3), 3 * per_layer);
}
