// Accumulating activation statistics from the forward pass's hooks.
#include "libst/model/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <optional>

#include "libst/core/parallel.hpp"
#include "libst/format/stats_merge.hpp"

namespace st::model {

void StatsCollector::on_linear_input(const std::string& name, const float* x, int64_t rows, int64_t cols) {
  auto [it, fresh] = stats_.linears.try_emplace(name);
  LinearStats& s = it->second;
  if (fresh) {
    s.min = INFINITY, s.max = -INFINITY;
    s.absmax.assign(size_t(cols), 0.0f);
    s.sumsq.assign(size_t(cols), 0.0);
    s.chmin.assign(size_t(cols), INFINITY);
    s.chmax.assign(size_t(cols), -INFINITY);
  }
  // Columns split across threads: each owns its channels' absmax and sumsq.
  std::vector<float> mins(size_t(threads()) + 1, INFINITY), maxs(size_t(threads()) + 1, -INFINITY);
  const int64_t per = (cols + threads() - 1) / threads();
  parallel_for(threads(), [&](int64_t b, int64_t e) {
    for (int64_t part = b; part < e; ++part) {
      const int64_t c0 = part * per, c1 = std::min(cols, c0 + per);
      float mn = INFINITY, mx = -INFINITY;
      for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * cols;
        for (int64_t c = c0; c < c1; ++c) {
          const float v = xr[c] + 0.0f;  // -0 as +0: a minimum or maximum of 0 has one sign in any order
          mn = std::min(mn, v), mx = std::max(mx, v);
          s.absmax[size_t(c)] = std::max(s.absmax[size_t(c)], std::fabs(v));
          s.sumsq[size_t(c)] += double(v) * v;
          s.chmin[size_t(c)] = std::min(s.chmin[size_t(c)], v);
          s.chmax[size_t(c)] = std::max(s.chmax[size_t(c)], v);
        }
      }
      mins[size_t(part)] = mn, maxs[size_t(part)] = mx;
    }
  });
  for (float v : mins) s.min = std::min(s.min, v);
  for (float v : maxs) s.max = std::max(s.max, v);
  s.tokens += rows;
}

void StatsCollector::absmax_per_head(const std::string& name, const float* x, int64_t rows, int64_t heads,
                                     int64_t dim) {
  auto& out = stats_.extra[name];
  if (out.empty()) {
    out.assign(size_t(heads), 0.0f);
    stats_.extra_shapes[name] = {heads};
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      const float* p = x + (r * heads + h) * dim;
      float m = out[size_t(h)];
      for (int64_t d = 0; d < dim; ++d) m = std::max(m, std::fabs(p[d]));
      out[size_t(h)] = m;
    }
}

void StatsCollector::on_attention(const std::string& block, const char* what, float* x, int64_t rows, int64_t heads,
                                  int64_t dim) {
  const std::string w = what;
  if (w == "q" || w == "q_absorbed") absmax_per_head(block + ".q_absmax", x, rows, heads, dim);
  else if (w == "k") absmax_per_head(block + ".k_absmax", x, rows, heads, dim);
  else if (w == "v") absmax_per_head(block + ".v_absmax", x, rows, heads, dim);
  else if (w == "kv_latent") absmax_per_head(block + ".kv_absmax", x, rows, heads, dim);
}

Result<ActivationStats> calibrate(Model& model, const TokenData& data, const ProgressFn& progress) {
  ST_CHECK(check_tokens(data, model.config()));
  int64_t longest = 0;
  for (const auto& s : data.seqs) longest = std::max<int64_t>(longest, int64_t(s.size()));
  model.prepare(longest);
  const int64_t n = int64_t(data.seqs.size());
  std::vector<StatsCollector> collectors(static_cast<size_t>(threads()));
  std::vector<std::vector<float>> logits(static_cast<size_t>(threads()));
  std::mutex mu;
  std::optional<std::pair<int64_t, Error>> failure;
  uint64_t done = 0, tokens = 0;
  if (progress) progress({"sequences", 0, uint64_t(n), 0, "tokens"});
  for_each_item(n, [&](int w, int64_t i) {
    const auto& seq = data.seqs[size_t(i)];
    auto& lg = logits[size_t(w)];
    lg.resize(seq.size() * size_t(model.config().vocab));
    Status st = model.forward(seq.data(), int64_t(seq.size()), lg.data(), &collectors[size_t(w)]);
    std::lock_guard<std::mutex> lock(mu);
    if (!st && (!failure || failure->first > i)) failure = {i, st.error()};
    ++done, tokens += seq.size();
    if (progress) progress({"sequences", done, uint64_t(n), tokens, "tokens"});
  });
  if (failure) return failure->second;
  ActivationStats s;
  for (auto& c : collectors) ST_CHECK(merge_stats(s, std::move(c.stats())));
  s.metadata["st.stats.samples"] = std::to_string(data.seqs.size());
  s.metadata["st.stats.seq_len"] = std::to_string(longest);
  s.metadata["st.stats.model"] = model.path();
  // Naming the data (and its hash, and the tokenizer of text) lets st-sparsify default to
  // SparseGPT on the same tokens.
  record_provenance(data, s.metadata);
  return s;
}

}  // namespace st::model
