// Anti-outlier smoothing: per-channel scales folded into the op before each linear group.
#include "libst/quant/smooth.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "libst/core/parallel.hpp"
#include "libst/quant/smooth_scan.hpp"

namespace st {
namespace {

constexpr float kMinScale = 1e-4f, kMaxScale = 1e4f;
constexpr float kTiny = 1e-8f;

// A consumer's weight, read where it lies (mapped) a tile at a time, with the scales earlier
// pairs gave it: the search never holds a weight-sized fp32 copy.
struct Consumer {
  const LinearInfo* info = nullptr;
  FloatDecoder dec;
  const uint8_t* bytes = nullptr;
  LinearScales scales;        // what earlier pairs gave it
  std::vector<double> colsq;  // [k]: sum over rows of w^2

  // W[r0:r1, c0:c1] as fp32 into dst, with those scales.
  void tile(int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst) const {
    dec.tile(bytes, r0, r1, c0, c1, dst);
    scales.apply(r0, r1, c0, c1, dst);
  }
};

// Tiles of a few rows by a block of columns: with a block of every candidate's scales they stay
// in L1 while the weight streams past.
constexpr int64_t kTileRows = 8, kTileCols = 512;

// Estimated quantized output error of the consumers after scaling by each candidate s: per-row
// weight rounding (step^2/12 times E[x'^2]) plus per-tensor activation rounding (step^2/12 times
// the consumers' column energy). Inputs: x2[j] = E[x_j^2], lo/hi per channel (or +-absmax).
// One pass over each consumer's rows serves every candidate; rows are scanned in parallel and the
// sums run in row order, so the result depends on neither the thread count nor the candidates
// evaluated beside it.
std::vector<double> estimate_errors(const std::vector<Consumer>& cons, const std::vector<std::vector<float>>& cands,
                                    const std::vector<double>& x2, const std::vector<float>& lo,
                                    const std::vector<float>& hi) {
  const size_t nc = cands.size();
  const int64_t k = int64_t(x2.size());
  std::vector<double> err(nc, 0.0), ex2(nc, 0.0), da(nc);
  for (size_t c = 0; c < nc; ++c) {
    const std::vector<float>& s = cands[c];
    float mn = 0, mx = 0;
    for (int64_t j = 0; j < k; ++j) {
      mn = std::min(mn, lo[j] / s[j]);
      mx = std::max(mx, hi[j] / s[j]);
      ex2[c] += x2[j] / (double(s[j]) * s[j]);
    }
    da[c] = double(mx - mn) / 255.0;
  }
  std::vector<const float*> sp(nc);
  for (size_t c = 0; c < nc; ++c) sp[c] = cands[c].data();
  std::vector<float> rmax;  // [row][candidate]
  for (const auto& con : cons) {
    const int64_t n = con.info->out_features;
    rmax.assign(size_t(n) * nc, 0.0f);
    parallel_for(
        n, [&](int64_t r0, int64_t r1) {
          std::vector<float> tile(size_t(kTileRows * kTileCols));
          std::vector<const float*> sb(nc);
          for (int64_t t0 = r0; t0 < r1; t0 += kTileRows) {
            const int64_t t1 = std::min(r1, t0 + kTileRows);
            for (int64_t j0 = 0; j0 < k; j0 += kTileCols) {
              const int64_t nb = std::min(kTileCols, k - j0);
              con.tile(t0, t1, j0, j0 + nb, tile.data());
              for (size_t c = 0; c < nc; ++c) sb[c] = sp[c] + j0;
              scan_rows(tile.data(), t1 - t0, nb, nb, sb.data(), int(nc), rmax.data() + t0 * nc);
            }
          }
        },
        16);
    for (size_t c = 0; c < nc; ++c) {
      double colsq = 0;
      for (int64_t j = 0; j < k; ++j) colsq += con.colsq[j] * (double(cands[c][j]) * cands[c][j]);
      for (int64_t r = 0; r < n; ++r) {
        const double dw = rmax[size_t(r) * nc + c] / 127.0;
        err[c] += dw * dw / 12.0 * ex2[c];
      }
      err[c] += da[c] * da[c] / 12.0 * colsq;
    }
  }
  return err;
}

// What the consumers of one pair read, per input channel: the union of their calibration
// absmax, E[x^2], and the range lo/hi (per-channel min/max when the statistics have them, else
// +-absmax). Missing or broken statistics: nullopt (the pair is left for the quantizer to
// report or handle).
struct PairInputs {
  std::vector<float> amax, lo, hi;
  std::vector<double> x2;
  bool have_ch = true;  // per-channel min/max known
};
std::optional<PairInputs> pair_inputs(const ActivationStats& stats, const std::vector<const LinearInfo*>& members) {
  const int64_t k = members.front()->in_features;
  PairInputs in;
  for (const auto* l : members) {
    const LinearStats* s = stats.linear(l->prefix);
    if (!s || int64_t(s->absmax.size()) != k || s->tokens <= 0 || !std::isfinite(s->min) || !std::isfinite(s->max))
      return std::nullopt;
    if (s->chmin.size() != size_t(k) || s->chmax.size() != size_t(k)) in.have_ch = false;
  }
  in.amax.assign(size_t(k), 0.0f), in.lo.resize(size_t(k)), in.hi.resize(size_t(k)), in.x2.resize(size_t(k));
  const LinearStats& s0 = *stats.linear(members.front()->prefix);
  for (int64_t j = 0; j < k; ++j) {
    for (const auto* l : members) in.amax[j] = std::max(in.amax[j], stats.linear(l->prefix)->absmax[j]);
    in.x2[j] = s0.sumsq[j] / double(s0.tokens);
    in.lo[j] = in.have_ch ? std::min(s0.chmin[j], 0.0f) : -in.amax[j];
    in.hi[j] = in.have_ch ? std::max(s0.chmax[j], 0.0f) : in.amax[j];
    if (in.have_ch)
      for (const auto* l : members) {
        in.lo[j] = std::min(in.lo[j], stats.linear(l->prefix)->chmin[j]);
        in.hi[j] = std::max(in.hi[j], stats.linear(l->prefix)->chmax[j]);
      }
  }
  return in;
}

// The consumers (their weights mapped until release_consumers), each column's sum of squares,
// and the largest |W[:, j]| over all of them.
Result<std::vector<Consumer>> load_consumers(const Checkpoint& ckpt, const std::vector<const LinearInfo*>& members,
                                             const WeightScales& scales, std::vector<float>& wmax) {
  const int64_t k = members.front()->in_features;
  wmax.assign(size_t(k), 0.0f);
  std::vector<Consumer> cons;
  for (const auto* l : members) {
    const TensorEntry* e = ckpt.find(l->weight_name());
    Consumer con;
    con.info = l;
    con.bytes = ckpt.data(*e).data;
    ST_ASSIGN(con.dec, ckpt.decoder(*e));
    con.scales = scales.of(l->prefix);
    con.colsq.assign(size_t(k), 0.0);
    // Columns in parallel, each summed in row order: the same sums for any thread count.
    parallel_for(
        k, [&](int64_t j0, int64_t j1) {
          std::vector<float> tile(size_t(kTileRows * (j1 - j0)));
          for (int64_t r0 = 0; r0 < l->out_features; r0 += kTileRows) {
            const int64_t r1 = std::min(l->out_features, r0 + kTileRows);
            con.tile(r0, r1, j0, j1, tile.data());
            scan_columns(tile.data(), r1 - r0, j1 - j0, j1 - j0, wmax.data() + j0, con.colsq.data() + j0);
          }
        },
        64);
    cons.push_back(std::move(con));
  }
  return cons;
}

// The quantizer reads the weights again: do not keep their pages mapped meanwhile.
void release_consumers(const Checkpoint& ckpt, const std::vector<Consumer>& cons) {
  for (const auto& c : cons) ckpt.release(*ckpt.find(c.info->weight_name()));
}

// The pair's scales s: o.alpha's, or with o.search the alpha in {0, 0.2, ..., 0.8} (and o.alpha)
// whose estimated error is lowest, the first in that order on a tie. Returns the alpha chosen.
float choose_scales(const std::vector<Consumer>& cons, const PairInputs& in, const std::vector<float>& wmax,
                    const SmoothOptions& o, std::vector<float>& s) {
  const size_t k = wmax.size();
  auto scales = [&](float a) {
    std::vector<float> v(k);
    for (size_t j = 0; j < k; ++j) v[j] = smooth_scale(in.amax[j], wmax[j], a);
    return v;
  };
  std::vector<float> alphas = {o.alpha};
  std::vector<std::vector<float>> cands = {scales(o.alpha)};
  if (o.search)
    for (float a : {0.0f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f}) {
      if (a == o.alpha && a != 0.0f) continue;  // the same scales again could only tie, and a tie keeps the first
      alphas.push_back(a);
      cands.push_back(a == 0.0f ? std::vector<float>(k, 1.0f) : scales(a));  // alpha 0: no smoothing
    }
  size_t best = 0;
  if (alphas.size() > 1) {
    const auto err = estimate_errors(cons, cands, in.x2, in.lo, in.hi);
    for (size_t c = 1; c < err.size(); ++c)
      if (err[c] < err[best]) best = c;
  }
  s = std::move(cands[best]);
  return alphas[best];
}

// The members' statistics rewritten to describe x' = x / s: absmax / s, sumsq / s^2, per-channel
// min/max / s, and the per-tensor range from those (or +-max absmax' without them).
void rescale_stats(ActivationStats& stats, const std::vector<const LinearInfo*>& members, const std::vector<float>& s,
                   bool have_ch) {
  const size_t k = s.size();
  for (const auto* l : members) {
    LinearStats& ls = stats.linears[l->prefix];
    float mn = INFINITY, mx = -INFINITY, am = 0;
    for (size_t j = 0; j < k; ++j) {
      ls.absmax[j] /= s[j];
      ls.sumsq[j] /= double(s[j]) * s[j];
      am = std::max(am, ls.absmax[j]);
      if (have_ch) {
        ls.chmin[j] /= s[j], ls.chmax[j] /= s[j];
        mn = std::min(mn, ls.chmin[j]), mx = std::max(mx, ls.chmax[j]);
      }
    }
    if (!have_ch) {
      mn = ls.min < 0 ? -am : 0.0f;
      mx = ls.max > 0 ? am : 0.0f;
    }
    ls.min = mn, ls.max = mx;
  }
}

// Small tensors (norm weights, biases) rewritten so far, read on first use.
Result<std::vector<float>*> rewritten(const Checkpoint& ckpt, SmoothResult& res, const std::string& name) {
  auto it = res.tensors.find(name);
  if (it != res.tensors.end()) return &it->second;
  if (!ckpt.find(name)) return static_cast<std::vector<float>*>(nullptr);
  ST_ASSIGN(auto v, ckpt.read_f32(name));
  return &(res.tensors[name] = std::move(v));
}

// Applies one pair: chooses s, folds 1/s into its source (the norm vector [k], or the source
// linear's rows and bias) and s into the consumers' columns, rewrites their statistics.
Status smooth_pair(const Checkpoint& ckpt, const SmoothPair& p, ActivationStats& stats, const SmoothOptions& o,
                   SmoothResult& res) {
  const auto& members = p.members;
  if (members.empty()) return Status{};
  const int64_t k = members.front()->in_features;
  const auto in = pair_inputs(stats, members);
  if (!in) return Status{};
  for (const auto* l : members)
    if (!ckpt.find(l->weight_name())) return Status{};
  std::vector<float>* norm = nullptr;
  if (p.source_linear) {
    if (!ckpt.find(p.source_linear->weight_name())) return Status{};
    if (p.row0 + k > p.source_linear->out_features)
      return make_error(Errc::format, "cannot smooth: rows do not match the next linear's input", ckpt.path(),
                        p.source_linear->weight_name());
  } else {
    ST_ASSIGN(norm, rewritten(ckpt, res, p.source));
    if (!norm) return Status{};
    if (int64_t(norm->size()) != k)
      return make_error(Errc::format, "cannot smooth: size does not match the next linear's input", ckpt.path(),
                        p.source);
  }
  std::vector<float> wmax, s;
  ST_ASSIGN(auto cons, load_consumers(ckpt, members, res.scales, wmax));
  const float alpha = choose_scales(cons, *in, wmax, o, s);
  release_consumers(ckpt, cons);
  res.alpha[p.source] = alpha;
  if (norm) {
    for (int64_t j = 0; j < k; ++j) (*norm)[j] /= s[j];
  } else {
    auto& row = res.scales.row[p.source_linear->prefix];
    if (row.empty()) row.assign(size_t(p.source_linear->out_features), 1.0f);
    for (int64_t j = 0; j < k; ++j) row[p.row0 + j] *= s[j];
    ST_ASSIGN(auto* b, rewritten(ckpt, res, p.source_bias));
    if (b && int64_t(b->size()) == p.source_linear->out_features)
      for (int64_t j = 0; j < k; ++j) (*b)[p.row0 + j] /= s[j];
  }
  for (const auto* l : members) {
    auto& col = res.scales.column[l->prefix];
    if (col.empty()) col.assign(size_t(k), 1.0f);
    for (int64_t j = 0; j < k; ++j) col[j] *= s[j];
  }
  rescale_stats(stats, members, s, in->have_ch);
  ++res.pairs;
  if (alpha > 0)
    for (const auto* l : members) res.smoothed.push_back(l->prefix);
  return Status{};
}

}  // namespace

void LinearScales::apply(int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* w) const {
  const int64_t width = c1 - c0;
  for (int64_t r = r0; r < r1; ++r) {
    float* x = w + (r - r0) * width;
    if (column)
      for (int64_t j = 0; j < width; ++j) x[j] *= column[c0 + j];
    if (row)
      for (int64_t j = 0; j < width; ++j) x[j] /= row[r];
  }
}

LinearScales WeightScales::of(const std::string& prefix) const {
  LinearScales s;
  if (const auto c = column.find(prefix); c != column.end()) s.column = c->second.data();
  if (const auto r = row.find(prefix); r != row.end()) s.row = r->second.data();
  return s;
}

void apply_weight_scales(const WeightScales& scales, const std::string& prefix, int64_t n, int64_t k, float* w) {
  const LinearScales s = scales.of(prefix);
  if (!s) return;
  parallel_for(
      n, [&](int64_t r0, int64_t r1) { s.apply(r0, r1, 0, k, w + r0 * k); }, 16);
}

float smooth_scale(float act_absmax, float weight_absmax, float alpha) {
  if (!(act_absmax > 0) || !std::isfinite(act_absmax)) return 1.0f;
  const float s = std::pow(std::max(act_absmax, kTiny), alpha) / std::pow(std::max(weight_absmax, kTiny), 1 - alpha);
  if (!std::isfinite(s)) return 1.0f;
  return std::min(kMaxScale, std::max(kMinScale, s));
}

std::vector<SmoothPair> smoothing_pairs(const Architecture& arch, const SmoothOptions& o) {
  // Each fused group once, from what produces its input (Architecture::input_source).
  std::vector<SmoothPair> pairs;
  std::map<std::string, bool> done;
  for (const auto& l : arch.linears()) {
    if (done[l.group] || (o.groups && !o.groups->count(l.group))) continue;
    done[l.group] = true;
    const auto members = arch.group(l.group);
    if (std::any_of(members.begin(), members.end(), [](const LinearInfo* m) { return m->float_by_default; })) continue;
    const auto src = arch.input_source(l);
    if (!src) continue;
    if (src->linear) {
      if (o.up_down)
        pairs.push_back(SmoothPair{src->linear->weight_name(), src->linear, src->linear->bias_name(), src->row0, members});
    } else if (o.norms) {
      pairs.push_back(SmoothPair{src->norm, nullptr, "", 0, members});
    }
  }
  return pairs;
}

Result<SmoothResult> smooth(const Checkpoint& ckpt, const Architecture& arch, ActivationStats& stats,
                            const SmoothOptions& o, const ProgressFn& progress) {
  SmoothResult res;
  const auto pairs = smoothing_pairs(arch, o);
  uint64_t done = 0;
  if (progress) progress({"smoothing pairs", 0, pairs.size(), 0, "pairs"});
  for (const auto& p : pairs) {
    ST_CHECK(smooth_pair(ckpt, p, stats, o, res));
    if (progress) progress({"smoothing pairs", ++done, pairs.size(), done, "pairs"});
  }
  return res;
}

}  // namespace st
