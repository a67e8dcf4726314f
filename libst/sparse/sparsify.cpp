// W8A8S: row-wise pruning (magnitude, Wanda, N:M) followed by W8A8 static quantization.
#include "libst/sparse/sparsify.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <thread>

#include "libst/arch/architecture.hpp"
#include "libst/quant/quantize.hpp"
#include "libst/sparse/sparsegpt.hpp"

namespace st {
namespace {

void parallel_rows(int64_t n, int threads, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t t = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  if (t <= 1) {
    body(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t per = (n + t - 1) / t;
  for (int64_t i = 0; i < t; ++i) {
    const int64_t a = i * per, b = std::min(n, a + per);
    if (a < b) pool.emplace_back(body, a, b);
  }
  for (auto& th : pool) th.join();
}

// Zeroes the `quota` lowest (score, column) entries among cand; returns how many it zeroed.
uint64_t zero_lowest(float* w, const float* score, std::vector<int32_t>& cand, int64_t quota) {
  quota = std::min<int64_t>(quota, static_cast<int64_t>(cand.size()));
  if (quota <= 0) return 0;
  auto less = [score](int32_t a, int32_t b) { return score[a] < score[b] || (score[a] == score[b] && a < b); };
  if (quota < static_cast<int64_t>(cand.size())) std::nth_element(cand.begin(), cand.begin() + (quota - 1), cand.end(), less);
  for (int64_t i = 0; i < quota; ++i) w[cand[i]] = 0.f;
  return static_cast<uint64_t>(quota);
}

uint64_t prune_row(float* w, int64_t k, const float* norm, const PruneSpec& s, std::vector<float>& score,
                   std::vector<int32_t>& cand, std::vector<char>& prot) {
  score.resize(k);
  for (int64_t j = 0; j < k; ++j) score[j] = std::fabs(w[j]) * (norm ? norm[j] : 1.f);
  prot.assign(k, 0);
  const int64_t keep = std::llround(s.protect * static_cast<double>(k));
  if (keep > 0) {
    cand.resize(k);
    for (int64_t j = 0; j < k; ++j) cand[j] = static_cast<int32_t>(j);
    auto more = [w](int32_t a, int32_t b) {
      const float x = std::fabs(w[a]), y = std::fabs(w[b]);
      return x > y || (x == y && a < b);
    };
    const int64_t m = std::min(keep, k);
    if (m < k) std::nth_element(cand.begin(), cand.begin() + (m - 1), cand.end(), more);
    for (int64_t i = 0; i < m; ++i) prot[cand[i]] = 1;
  }
  uint64_t pruned = 0;
  if (s.method == SparsifyMethod::nm) {
    const int64_t M = s.nm_m, drop = s.nm_m - s.nm_n;
    for (int64_t g0 = 0; g0 < k; g0 += M) {
      const int64_t len = std::min(M, k - g0);
      cand.clear();
      for (int64_t j = g0; j < g0 + len; ++j)
        if (!prot[j]) cand.push_back(static_cast<int32_t>(j));
      pruned += zero_lowest(w, score.data(), cand, len == M ? drop : len * drop / M);
    }
  } else {
    cand.clear();
    for (int64_t j = 0; j < k; ++j)
      if (!prot[j]) cand.push_back(static_cast<int32_t>(j));
    const auto quota = static_cast<int64_t>(std::floor(s.ratio * static_cast<double>(k) + 1e-9));
    pruned += zero_lowest(w, score.data(), cand, quota);
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

uint64_t prune_rows(float* w, int64_t n, int64_t k, const float* col_norm, const PruneSpec& spec, int threads) {
  std::atomic<uint64_t> total{0};
  parallel_rows(n, threads, [&](int64_t a, int64_t b) {
    std::vector<float> score;
    std::vector<int32_t> cand;
    std::vector<char> prot;
    uint64_t local = 0;
    for (int64_t r = a; r < b; ++r)
      local += prune_row(w + r * k, k, col_norm, spec, score, cand, prot);
    total += local;
  });
  return total;
}

Result<SparsifySummary> sparsify(Checkpoint& ckpt, const SparsifyOptions& o) {
  ST_CHECK(check_prune_spec(o.prune));
  if (!o.stats) return make_error(Errc::usage, "W8A8S needs activation statistics (st-calibrate)");
  const bool sparsegpt = o.prune.method == SparsifyMethod::sparsegpt;
  if (sparsegpt && !o.gram) return make_error(Errc::usage, "sparsegpt needs calibration data (--data)");
  ST_ASSIGN(Architecture arch, Architecture::of(ckpt));

  // Wanda / N:M column norms ||x_j||_2 from the float model's statistics, taken before smoothing
  // rewrites them: every score is computed on the float weights W (W' diag(1/s) below), so the
  // method prunes what it says whatever the smoothing.
  const bool need_norm = o.prune.method == SparsifyMethod::wanda || o.prune.method == SparsifyMethod::nm;
  std::map<std::string, std::vector<float>> norms;
  for (const auto& l : arch.linears()) {
    const LinearStats* s = o.stats->linear(l.prefix);
    if (!need_norm || !s || s->tokens == 0) continue;  // an unrouted expert: magnitude (below)
    if (static_cast<int64_t>(s->sumsq.size()) != l.in_features)
      return make_error(Errc::format, "statistics hold " + std::to_string(s->sumsq.size()) +
                                          " input_sumsq values, the linear has " + std::to_string(l.in_features) +
                                          " input channels (Wanda needs them; statistics of another model?)",
                        o.stats_path, l.prefix);
    auto& v = norms[l.prefix];
    v.resize(s->sumsq.size());
    for (size_t j = 0; j < v.size(); ++j) {
      if (!std::isfinite(s->sumsq[j]) || s->sumsq[j] < 0)
        return make_error(Errc::numeric, "input_sumsq[" + std::to_string(j) + "] is negative, NaN or Inf",
                          o.stats_path, l.prefix);
      v[j] = static_cast<float>(std::sqrt(s->sumsq[j]));
    }
  }

  ActivationStats stats = *o.stats;  // prepare_static rewrites its copy
  ST_ASSIGN(StaticPrep prep, prepare_static(ckpt, arch, stats, o.static_prep));
  const int threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  SparsifySummary sum;
  sum.notes = prep.notes;
  std::map<std::string, LinearSparsity> done;
  QuantizeOptions q;
  q.mode = W8A8Mode::w8a8s;
  q.stats = &stats;
  q.stats_path = o.stats_path;
  q.float_globs = o.float_globs;
  q.output = o.output;
  q.threads = threads;
  prep.attach(q);
  q.progress = o.progress;
  q.warn = o.warn;
  // Says how the weights were pruned: with sparsegpt the kept weights were updated, so they are
  // not round(W / scale) of the float model (st-verify --against must not expect that).
  q.metadata["st.sparsify.method"] = sparsify_method_name(o.prune.method);
  q.metadata["st.sparsify.pattern"] = o.prune.method == SparsifyMethod::nm
                                          ? std::to_string(o.prune.nm_n) + ":" + std::to_string(o.prune.nm_m)
                                          : std::to_string(o.prune.ratio);
  q.metadata["st.sparsify.protect"] = std::to_string(o.prune.protect);
  q.metadata["st.sparsify.weights_updated"] = sparsegpt ? "1" : "0";
  q.transform_weight = [&](const LinearInfo& l, std::vector<float>& w) -> Status {
    const int64_t n = l.out_features, k = l.in_features;
    for (float x : w)
      if (!std::isfinite(x)) return make_error(Errc::numeric, "weight has NaN or Inf", ckpt.path(), l.weight_name());
    // Back to the float weights when smoothing scaled the columns (W' = W diag(s)).
    // (A row scale, up_proj's, changes no row's ranking and no SparseGPT update direction.)
    const auto cs = prep.weight_scales.column.find(l.prefix);
    std::vector<float> unscaled;
    float* target = w.data();
    if (cs != prep.weight_scales.column.end()) {
      unscaled.resize(w.size());
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < k; ++j) unscaled[r * k + j] = w[r * k + j] / cs->second[j];
      target = unscaled.data();
    }
    LinearSparsity ls;
    ls.prefix = l.prefix;
    ls.layer = l.layer;
    ls.n = n;
    ls.k = k;
    const auto g = sparsegpt ? o.gram->by_group.find(l.group) : std::map<std::string, std::vector<double>>::const_iterator{};
    const bool have_gram = sparsegpt && g != o.gram->by_group.end() && o.gram->dim.at(l.group) == k;
    const auto nv = norms.find(l.prefix);
    const bool fallback = sparsegpt ? !have_gram : need_norm && nv == norms.end();
    if (fallback) {
      if (l.expert < 0)
        return make_error(Errc::format,
                          sparsegpt ? "no input Gram matrix for this linear (the calibration data never reached it)"
                                    : "no statistics for this linear (calibrate the same model)",
                          sparsegpt ? ckpt.path() : o.stats_path, l.prefix);
      sum.fallbacks.push_back(l.prefix);  // a routed expert no calibration token reached
      PruneSpec mag = o.prune;
      if (mag.method != SparsifyMethod::nm) mag.method = SparsifyMethod::magnitude;
      ls.pruned = prune_rows(target, n, k, nullptr, mag, threads);
    } else if (sparsegpt) {
      auto pr = sparsegpt_prune(target, n, k, g->second.data(), o.prune, threads);
      if (!pr) return std::move(pr.error()).in_file(ckpt.path()).in_tensor(l.weight_name());
      ls.pruned = *pr;
    } else {
      ls.pruned = prune_rows(target, n, k, need_norm ? nv->second.data() : nullptr, o.prune, threads);
    }
    if (target != w.data()) {
      // SparseGPT changed the kept weights: scale them back; the other methods only zeroed.
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < k; ++j) {
          float& x = w[r * k + j];
          x = sparsegpt ? target[r * k + j] * cs->second[j] : target[r * k + j] == 0.f ? 0.f : x;
        }
    }
    done[l.prefix] = std::move(ls);
    return Status{};
  };
  ST_ASSIGN(QuantizeSummary qs, quantize_w8a8(ckpt, q));
  sum.linears_float = qs.linears_float;
  for (const auto& l : arch.linears()) {
    auto it = done.find(l.prefix);
    if (it == done.end()) continue;
    LinearSparsity& ls = it->second;
    ls.zeros = qs.weight_zeros.at(l.prefix);
    sum.elements += static_cast<uint64_t>(ls.n * ls.k);
    sum.pruned += ls.pruned;
    sum.zeros += ls.zeros;
    sum.linears.push_back(std::move(ls));
  }
  return sum;
}

}  // namespace st
