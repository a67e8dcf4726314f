// W8A8S: every quantized linear pruned (prune.hpp, sparsegpt.hpp) as st-quant-w8a8's static path
// streams it.
#include "libst/sparse/sparsify.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "libst/arch/architecture.hpp"
#include "libst/format/checksum.hpp"
#include "libst/quant/quant_plan.hpp"
#include "libst/quant/quantize.hpp"
#include "libst/quant/smooth.hpp"
#include "libst/sparse/sparsegpt.hpp"

namespace st {
namespace {

// SparseGPT's parameters and data in the output's __metadata__: the same method on the same
// tokens gives the same weights.
void record_gram(const SparseGptRun& g, Metadata& md) {
  md["st.sparsify.damp"] = std::to_string(kSparseGptDamp);
  md["st.sparsify.block"] = std::to_string(kSparseGptBlock);
  md["st.sparsify.data"] = g.data_name;
  md["st.sparsify.data_xxh3"] = xxh3_hex(g.data_hash);
  if (g.tokenizer_hash) {
    md["st.sparsify.tokenizer_xxh3"] = xxh3_hex(g.tokenizer_hash);
    md["st.sparsify.pack"] = std::to_string(g.packed);
  }
  md["st.sparsify.sequences"] = std::to_string(g.sequences);
  md["st.sparsify.tokens"] = std::to_string(g.tokens);
}

}  // namespace

Result<SparsifySummary> sparsify(Checkpoint& ckpt, const SparsifyOptions& o) {
  ST_CHECK(check_prune_spec(o.prune));
  if (!o.stats) return make_error(Errc::usage, "W8A8S needs activation statistics (st-calibrate)");
  const bool sparsegpt = o.prune.method == SparsifyMethod::sparsegpt;
  if (sparsegpt && !o.sparsegpt_data) return make_error(Errc::usage, "sparsegpt needs calibration data (--data)");
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

  QuantizeOptions q;
  q.mode = W8A8Mode::w8a8s;
  q.stats_path = o.stats_path;
  q.float_globs = o.float_globs;
  q.scheme_rules = o.scheme_rules;
  q.output = o.output;
  ST_ASSIGN(const SchemePlan schemes, choose_schemes(arch, q, ckpt.path()));

  ActivationStats stats = *o.stats;  // prepare_static rewrites its copy
  StaticPrepOptions prep_options = o.static_prep;
  if (!prep_options.progress) prep_options.progress = o.progress;
  prep_options.static_groups = schemes.static_groups();
  ST_ASSIGN(StaticPrep prep, prepare_static(ckpt, arch, stats, prep_options));

  // SparseGPT prunes the float model layer by layer now: the groups the schemes make static, less
  // those a fallback keeps float (with their whole group); the others keep their weights.
  std::optional<SparseGptRun> gpt;
  if (sparsegpt) {
    std::set<std::string> pruned_groups = schemes.static_groups();
    for (const auto& l : arch.linears())
      if (prep.float_linears.count(l.prefix)) pruned_groups.erase(l.group);
    auto prune_it = [&](const LinearInfo& l) { return pruned_groups.count(l.group) > 0; };
    ST_ASSIGN(gpt, sparsegpt_layers(ckpt, arch, *o.sparsegpt_data, o.prune, prune_it, o.output->directory(), o.progress));
  }

  SparsifySummary sum;
  sum.notes = prep.notes;
  std::map<std::string, LinearSparsity> done;
  q.stats = &stats;
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
  if (sparsegpt) record_gram(*gpt, q.metadata);
  q.transform_weight = [&](const LinearInfo& l, std::vector<float>& w) -> Status {
    const int64_t n = l.out_features, k = l.in_features;
    for (float x : w)
      if (!std::isfinite(x)) return make_error(Errc::numeric, "weight has NaN or Inf", ckpt.path(), l.weight_name());
    LinearSparsity ls;
    ls.prefix = l.prefix;
    ls.layer = l.layer;
    ls.n = n;
    ls.k = k;
    if (sparsegpt && gpt->weights.has(l.prefix)) {  // pruned on the float W: now W' as smoothing makes it
      ST_CHECK(gpt->weights.get(l.prefix, w));
      apply_weight_scales(prep.weight_scales, l.prefix, n, k, w.data());
      ls.pruned = gpt->weights.pruned(l.prefix);
      done[l.prefix] = std::move(ls);
      return Status{};
    }
    // Back to the float weights when smoothing scaled the columns (W' = W diag(s)).
    // (A row scale, up_proj's, changes no row's ranking.)
    const auto cs = prep.weight_scales.column.find(l.prefix);
    std::vector<float> unscaled;
    float* target = w.data();
    if (cs != prep.weight_scales.column.end()) {
      unscaled.resize(w.size());
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < k; ++j) unscaled[r * k + j] = w[r * k + j] / cs->second[j];
      target = unscaled.data();
    }
    const auto nv = norms.find(l.prefix);
    const bool fallback = sparsegpt || (need_norm && nv == norms.end());
    if (fallback) {
      if (l.expert < 0)
        return make_error(Errc::format,
                          sparsegpt ? "no input Gram matrix for this linear (the calibration data never reached it)"
                                    : "no statistics for this linear (calibrate the same model)",
                          sparsegpt ? ckpt.path() : o.stats_path, l.prefix);
      sum.fallbacks.push_back(l.prefix);  // a routed expert no calibration token reached
      PruneSpec mag = o.prune;
      if (mag.method != SparsifyMethod::nm) mag.method = SparsifyMethod::magnitude;
      ls.pruned = prune_rows(target, n, k, nullptr, mag);
    } else {
      ls.pruned = prune_rows(target, n, k, need_norm ? nv->second.data() : nullptr, o.prune);
    }
    if (target != w.data()) {  // the rule only zeroed: zero the same weights of W'
      for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < k; ++j)
          if (target[r * k + j] == 0.f) w[r * k + j] = 0.f;
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
