// Magnitude, Wanda and N:M pruning of rows, and the quota of a column group.
#include "libst/sparse/prune.hpp"

#include <atomic>

#include "libst/core/parallel.hpp"

namespace st {
namespace {

struct RowScratch {
  std::vector<float> score;
  std::vector<int32_t> cand;
  std::vector<char> prot;
};

uint64_t prune_row(float* w, int64_t k, const float* norm, const PruneSpec& s, RowScratch& t) {
  t.score.resize(static_cast<size_t>(k));
  for (int64_t j = 0; j < k; ++j) t.score[j] = std::fabs(w[j]) * (norm ? norm[j] : 1.f);
  mark_protected(w, k, s.protect, t.prot, t.cand);
  auto zero = [w](int32_t j) { w[j] = 0.f; };
  if (s.method != SparsifyMethod::nm) return static_cast<uint64_t>(pick_lowest(t.score.data(), 0, k, t.prot, prune_quota(s, k), t.cand, zero));
  uint64_t pruned = 0;
  for (int64_t g0 = 0; g0 < k; g0 += s.nm_m) {
    const int64_t len = std::min<int64_t>(s.nm_m, k - g0);
    pruned += static_cast<uint64_t>(pick_lowest(t.score.data(), g0, g0 + len, t.prot, prune_quota(s, len), t.cand, zero));
  }
  return pruned;
}

}  // namespace

const char* sparsify_method_name(SparsifyMethod m) {
  switch (m) {
    case SparsifyMethod::magnitude: return "magnitude";
    case SparsifyMethod::wanda: return "wanda";
    case SparsifyMethod::nm: return "nm";
    case SparsifyMethod::sparsegpt: return "sparsegpt";
  }
  return "?";
}

Status check_prune_spec(const PruneSpec& s) {
  if (!(s.ratio >= 0 && s.ratio < 1)) return make_error(Errc::usage, "--ratio must be in [0, 1)");
  if (!(s.protect >= 0 && s.protect <= 1)) return make_error(Errc::usage, "--protect must be in [0, 1]");
  if (s.method == SparsifyMethod::nm && !(s.nm_n > 0 && s.nm_n < s.nm_m && s.nm_m <= 64))
    return make_error(Errc::usage, "--nm N:M needs 0 < N < M <= 64");
  return Status{};
}

int64_t prune_quota(const PruneSpec& s, int64_t len) {
  if (s.method == SparsifyMethod::nm) {
    const int64_t drop = s.nm_m - s.nm_n;
    return len == s.nm_m ? drop : len * drop / s.nm_m;
  }
  return static_cast<int64_t>(std::floor(s.ratio * static_cast<double>(len) + 1e-9));
}

uint64_t prune_rows(float* w, int64_t n, int64_t k, const float* col_norm, const PruneSpec& spec) {
  std::atomic<uint64_t> total{0};
  parallel_for(n, [&](int64_t a, int64_t b) {  // rows are independent: any split gives the same weights
    RowScratch scratch;
    uint64_t local = 0;
    for (int64_t r = a; r < b; ++r) local += prune_row(w + r * k, k, col_norm, spec, scratch);
    total += local;
  });
  return total;
}

}  // namespace st
