// Anti-outlier smoothing: per-channel scales folded into the op before each linear group.
#include "libst/quant/smooth.hpp"

#include <algorithm>
#include <cmath>

#include "libst/core/parallel.hpp"

namespace st {
namespace {

constexpr float kMinScale = 1e-4f, kMaxScale = 1e4f;
constexpr float kTiny = 1e-8f;

struct Consumer {
  const LinearInfo* info;
  std::vector<float> w;       // [n, k] fp32, with the scales earlier pairs gave it
  std::vector<double> colsq;  // [k]: sum over rows of w^2
};

// max_j |row[j] * s[j]| over one row, in 8 independent lanes so that it vectorises.
float row_absmax(const float* row, const float* s, int64_t k) {
  float lane[8] = {};
  int64_t j = 0;
  for (; j + 8 <= k; j += 8)
    for (int l = 0; l < 8; ++l) lane[l] = std::max(lane[l], std::fabs(row[j + l] * s[j + l]));
  float m = 0;
  for (; j < k; ++j) m = std::max(m, std::fabs(row[j] * s[j]));
  for (float v : lane) m = std::max(m, v);
  return m;
}

// Estimated quantized output error of the consumers after scaling by s: per-row weight
// rounding (step^2/12 times E[x'^2]) plus per-tensor activation rounding (step^2/12 times the
// consumers' column energy). Inputs: x2[j] = E[x_j^2], lo/hi per channel (or +-absmax).
// Rows are scanned in parallel; the sums run in row order, so the result does not depend on
// the thread count.
double estimate_error(const std::vector<Consumer>& cons, const std::vector<float>& s, const std::vector<double>& x2,
                      const std::vector<float>& lo, const std::vector<float>& hi) {
  const int64_t k = int64_t(s.size());
  float mn = 0, mx = 0;
  double ex2 = 0;
  for (int64_t j = 0; j < k; ++j) {
    mn = std::min(mn, lo[j] / s[j]);
    mx = std::max(mx, hi[j] / s[j]);
    ex2 += x2[j] / (double(s[j]) * s[j]);
  }
  const double da = double(mx - mn) / 255.0;
  double err = 0;
  std::vector<float> rmax;
  for (const auto& c : cons) {
    const int64_t n = c.info->out_features;
    rmax.resize(size_t(n));
    parallel_for(
        n, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) rmax[r] = row_absmax(c.w.data() + r * k, s.data(), k);
        },
        16);
    double colsq = 0;
    for (int64_t j = 0; j < k; ++j) colsq += c.colsq[j] * (double(s[j]) * s[j]);
    for (int64_t r = 0; r < n; ++r) {
      const double dw = rmax[r] / 127.0;
      err += dw * dw / 12.0 * ex2;
    }
    err += da * da / 12.0 * colsq;
  }
  return err;
}

}  // namespace

void apply_weight_scales(const WeightScales& scales, const std::string& prefix, int64_t n, int64_t k, float* w) {
  const auto c = scales.column.find(prefix);
  const auto d = scales.row.find(prefix);
  const float* col = c == scales.column.end() ? nullptr : c->second.data();
  const float* row = d == scales.row.end() ? nullptr : d->second.data();
  if (!col && !row) return;
  parallel_for(
      n, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          float* x = w + r * k;
          if (col)
            for (int64_t j = 0; j < k; ++j) x[j] *= col[j];
          if (row)
            for (int64_t j = 0; j < k; ++j) x[j] /= row[r];
        }
      },
      16);
}

float smooth_scale(float act_absmax, float weight_absmax, float alpha) {
  if (!(act_absmax > 0) || !std::isfinite(act_absmax)) return 1.0f;
  const float s = std::pow(std::max(act_absmax, kTiny), alpha) / std::pow(std::max(weight_absmax, kTiny), 1 - alpha);
  if (!std::isfinite(s)) return 1.0f;
  return std::min(kMaxScale, std::max(kMinScale, s));
}

Result<SmoothResult> smooth(const Checkpoint& ckpt, const Architecture& arch, ActivationStats& stats,
                            const SmoothOptions& o) {
  SmoothResult res;
  // Small tensors (norm weights, biases) are kept rewritten in res.tensors.
  auto load = [&](const std::string& name) -> Result<std::vector<float>*> {
    auto it = res.tensors.find(name);
    if (it != res.tensors.end()) return &it->second;
    if (!ckpt.find(name)) return static_cast<std::vector<float>*>(nullptr);
    ST_ASSIGN(auto v, ckpt.read_f32(name));
    return &(res.tensors[name] = std::move(v));
  };

  // One pair: `source` (a norm weight [k], or the linear `source_linear` whose rows are scaled)
  // feeding the consumers' columns.
  auto apply = [&](const std::string& source, const LinearInfo* source_linear, const std::string& source_bias,
                   const std::vector<const LinearInfo*>& members) -> Status {
    if (members.empty()) return Status{};
    const int64_t k = members.front()->in_features;
    // All consumers need statistics (they read the same input; take the union).
    std::vector<float> amax(size_t(k), 0.0f), lo(static_cast<size_t>(k)), hi(static_cast<size_t>(k));
    std::vector<double> x2(size_t(k), 0.0);
    bool have_ch = true;
    for (const auto* l : members) {
      const LinearStats* s = stats.linear(l->prefix);
      // Missing or broken statistics: left alone for the quantizer to report or handle.
      if (!s || int64_t(s->absmax.size()) != k || s->tokens <= 0 || !std::isfinite(s->min) || !std::isfinite(s->max))
        return Status{};
      if (s->chmin.size() != size_t(k) || s->chmax.size() != size_t(k)) have_ch = false;
    }
    const LinearStats& s0 = *stats.linear(members.front()->prefix);
    for (int64_t j = 0; j < k; ++j) {
      for (const auto* l : members) amax[j] = std::max(amax[j], stats.linear(l->prefix)->absmax[j]);
      x2[j] = s0.sumsq[j] / double(s0.tokens);
      lo[j] = have_ch ? std::min(s0.chmin[j], 0.0f) : -amax[j];
      hi[j] = have_ch ? std::max(s0.chmax[j], 0.0f) : amax[j];
      if (have_ch)
        for (const auto* l : members) {
          lo[j] = std::min(lo[j], stats.linear(l->prefix)->chmin[j]);
          hi[j] = std::max(hi[j], stats.linear(l->prefix)->chmax[j]);
        }
    }
    for (const auto* l : members)
      if (!ckpt.find(l->weight_name())) return Status{};
    std::vector<float>* norm = nullptr;
    if (source_linear) {
      if (!ckpt.find(source_linear->weight_name())) return Status{};
      if (source_linear->out_features != k)
        return make_error(Errc::format, "cannot smooth: rows do not match the next linear's input", ckpt.path(),
                          source_linear->weight_name());
    } else {
      ST_ASSIGN(norm, load(source));
      if (!norm) return Status{};
      if (int64_t(norm->size()) != k)
        return make_error(Errc::format, "cannot smooth: size does not match the next linear's input", ckpt.path(),
                          source);
    }
    std::vector<Consumer> cons;
    std::vector<float> wmax(size_t(k), 0.0f);
    for (const auto* l : members) {
      const TensorEntry* e = ckpt.find(l->weight_name());
      ST_ASSIGN(auto w, ckpt.read_f32(*e));
      ckpt.release(*e);  // the quantizer reads it again; do not keep the pages mapped meanwhile
      apply_weight_scales(res.scales, l->prefix, l->out_features, k, w.data());
      std::vector<double> colsq(size_t(k), 0.0);
      for (int64_t r = 0; r < l->out_features; ++r)
        for (int64_t j = 0; j < k; ++j) {
          const float v = w[r * k + j];
          wmax[j] = std::max(wmax[j], std::fabs(v));
          colsq[j] += double(v) * v;
        }
      cons.push_back({l, std::move(w), std::move(colsq)});
    }
    auto scales = [&](float a) {
      std::vector<float> s(static_cast<size_t>(k));
      for (int64_t j = 0; j < k; ++j) s[j] = smooth_scale(amax[j], wmax[j], a);
      return s;
    };
    float alpha = o.alpha;
    std::vector<float> s = scales(alpha);
    if (o.search) {
      double best = estimate_error(cons, s, x2, lo, hi);
      const std::vector<float> ones(size_t(k), 1.0f);
      for (float a : {0.0f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f}) {
        auto c = a == 0.0f ? ones : scales(a);
        const double e = estimate_error(cons, c, x2, lo, hi);
        if (e < best) best = e, alpha = a, s = std::move(c);
      }
    }
    res.alpha[source] = alpha;
    // Rewrite the source: the norm vector [k], or the source linear's rows (and its bias).
    if (norm) {
      for (int64_t j = 0; j < k; ++j) (*norm)[j] /= s[j];
    } else {
      auto& row = res.scales.row[source_linear->prefix];
      if (row.empty()) row.assign(size_t(k), 1.0f);
      for (int64_t j = 0; j < k; ++j) row[j] *= s[j];
      if (!source_bias.empty()) {
        ST_ASSIGN(auto* b, load(source_bias));
        if (b)
          for (int64_t j = 0; j < k; ++j) (*b)[j] /= s[j];
      }
    }
    for (const auto& c : cons) {
      auto& col = res.scales.column[c.info->prefix];
      if (col.empty()) col.assign(size_t(k), 1.0f);
      for (int64_t j = 0; j < k; ++j) col[j] *= s[j];
    }
    for (const auto* l : members) {
      LinearStats& ls = stats.linears[l->prefix];
      float mn = INFINITY, mx = -INFINITY, am = 0;
      for (int64_t j = 0; j < k; ++j) {
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
    ++res.pairs;
    if (alpha > 0)
      for (const auto* l : members) res.smoothed.push_back(l->prefix);
    return Status{};
  };

  // Layers whose MLP is MoE: their post-attention norm feeds the router and every expert.
  std::map<int, bool> moe;
  for (const auto& l : arch.linears())
    if (l.is_expert() || l.role == LinearRole::router) moe[l.layer] = true;

  std::map<std::string, bool> done;
  for (const auto& l : arch.linears()) {
    if (done[l.group]) continue;
    done[l.group] = true;
    const auto members = arch.group(l.group);
    for (const auto* m : members)
      if (m->float_by_default) goto next;
    {
      const std::string layer = "model.layers." + std::to_string(l.layer) + ".";
      switch (l.role) {
        case LinearRole::q:
        case LinearRole::k:
        case LinearRole::v:
        case LinearRole::q_a:
        case LinearRole::kv_a:
          if (o.norms) ST_CHECK(apply(layer + "input_layernorm.weight", nullptr, "", members));
          break;
        case LinearRole::q_b:
          if (o.norms) ST_CHECK(apply(layer + "self_attn.q_a_layernorm.weight", nullptr, "", members));
          break;
        case LinearRole::kv_b:
          if (o.norms && !o.keep_latent) ST_CHECK(apply(layer + "self_attn.kv_a_layernorm.weight", nullptr, "", members));
          break;
        case LinearRole::gate:
        case LinearRole::up:
          if (o.norms && !moe[l.layer] && !l.is_expert())
            ST_CHECK(apply(layer + "post_attention_layernorm.weight", nullptr, "", members));
          break;
        case LinearRole::down:
          if (o.up_down) {
            const std::string mlp = l.prefix.substr(0, l.prefix.rfind('.'));
            if (const LinearInfo* up = arch.linear_of_tensor(mlp + ".up_proj.weight"))
              ST_CHECK(apply(up->weight_name(), up, mlp + ".up_proj.bias", members));
          }
          break;
        default: break;
      }
    }
  next:;
  }
  return res;
}

}  // namespace st
