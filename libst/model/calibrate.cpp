// Accumulating activation statistics from the forward pass's hooks.
#include "libst/model/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "libst/core/parallel.hpp"
#include "libst/model/layer_stream.hpp"
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

std::vector<float>& StatsCollector::per_head(const std::string& name, int64_t heads) {
  auto& out = stats_.extra[name];
  if (out.empty()) {
    out.assign(size_t(heads), 0.0f);
    stats_.extra_shapes[name] = {heads};
  }
  return out;
}

void StatsCollector::absmax_per_head(const std::string& name, const float* x, int64_t rows, int64_t heads,
                                     int64_t dim) {
  auto& out = per_head(name, heads);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      const float* p = x + (r * heads + h) * dim;
      float m = out[size_t(h)];
      for (int64_t d = 0; d < dim; ++d) m = std::max(m, std::fabs(p[d]));
      out[size_t(h)] = m;
    }
}

// Per head of one sequence: the recall window's max(|lo|, |hi|) into `recall` (unless "": the shortest
// [lo, hi] holding int(kFaRecall * n) of the head's n = rows * dim values, as msModelSlim's
// recall_window; the smallest window start wins a tie) and the root mean square into `rms`;
// each the max over sequences.
void StatsCollector::window_per_head(const std::string& recall, const std::string& rms, const float* x, int64_t rows,
                                     int64_t heads, int64_t dim) {
  std::vector<float>* rec = recall.empty() ? nullptr : &per_head(recall, heads);
  auto& rm = per_head(rms, heads);
  const int64_t n = rows * dim, kept = int64_t(kFaRecall * double(n)), drop = n - kept;
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t h = 0; h < heads; ++h) {
    double sq = 0;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t d = 0; d < dim; ++d) {
        const float y = x[(r * heads + h) * dim + d];
        v[size_t(r * dim + d)] = y;
        sq += double(y) * y;
      }
    rm[size_t(h)] = std::max(rm[size_t(h)], float(std::sqrt(sq / double(n))));
    if (!rec || kept < 1) continue;
    // The window starts among the drop + 1 smallest values and ends among the drop + 1 largest.
    if (2 * (drop + 1) >= n) {
      std::sort(v.begin(), v.end());
    } else {
      std::partial_sort(v.begin(), v.begin() + drop + 1, v.end());
      std::nth_element(v.begin() + drop + 1, v.end() - drop - 1, v.end());
      std::sort(v.end() - drop - 1, v.end());
    }
    float lo = v[0], hi = v[size_t(kept - 1)];
    for (int64_t i = 1; i <= drop; ++i)
      if (v[size_t(i + kept - 1)] - v[size_t(i)] < hi - lo) lo = v[size_t(i)], hi = v[size_t(i + kept - 1)];
    (*rec)[size_t(h)] = std::max((*rec)[size_t(h)], std::max(std::fabs(lo), std::fabs(hi)));
  }
}

void StatsCollector::on_attention(const std::string& block, const char* what, float* x, int64_t rows, int64_t heads,
                                  int64_t dim) {
  const std::string w = what;
  if (w == "q" || w == "q_absorbed") {
    absmax_per_head(block + ".q_absmax", x, rows, heads, dim);
    window_per_head(block + ".q_recall", block + ".q_rms", x, rows, heads, dim);
  } else if (w == "k") {
    absmax_per_head(block + ".k_absmax", x, rows, heads, dim);
    window_per_head(block + ".k_recall", block + ".k_rms", x, rows, heads, dim);
  } else if (w == "v") {
    absmax_per_head(block + ".v_absmax", x, rows, heads, dim);
    window_per_head("", block + ".v_rms", x, rows, heads, dim);  // msModelSlim does not clip v
  } else if (w == "kv_latent") {
    absmax_per_head(block + ".kv_absmax", x, rows, heads, dim);
    window_per_head(block + ".kv_recall", block + ".kv_rms", x, rows, heads, dim);
  }
}

Result<ActivationStats> calibrate(Model& model, const TokenData& data, const ProgressFn& progress) {
  std::vector<StatsCollector> collectors(size_t(layer_run_workers(data)));
  LayerRun run;
  for (auto& c : collectors) run.observers.push_back(&c);
  ST_CHECK(run_layers(model, data, run, progress));
  int64_t longest = 0;
  for (const auto& seq : data.seqs) longest = std::max<int64_t>(longest, int64_t(seq.size()));
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
