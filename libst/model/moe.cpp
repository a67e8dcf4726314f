// Mixture of experts: routing as HF transformers 5 does it (DeepSeek V2/V3 sigmoid or softmax
// with groups and a score bias; Qwen3-MoE and Mixtral softmax top-k), routed + shared experts.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "libst/model/model.hpp"
#include "libst/core/blas.hpp"

namespace st::model {

namespace {

// Indices of the k largest values (ties: lower index first), like torch.topk.
std::vector<int> topk(const std::vector<float>& v, int k) {
  std::vector<int> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return v[size_t(a)] > v[size_t(b)] || (v[size_t(a)] == v[size_t(b)] && a < b);
  });
  idx.resize(size_t(k));
  return idx;
}

struct Route {
  std::vector<int> expert;
  std::vector<float> weight;
};

// One token's routing from its router logits.
Route route(const ModelConfig& c, const float* logits, const std::vector<float>& bias) {
  const int E = c.n_routed_experts, G = c.n_group, per = E / G;
  std::vector<float> scores(static_cast<size_t>(E));
  if (c.scoring_func == "softmax") {
    const float mx = *std::max_element(logits, logits + E);
    float sum = 0;
    for (int e = 0; e < E; ++e) sum += (scores[size_t(e)] = std::exp(logits[e] - mx));
    for (auto& s : scores) s /= sum;
  } else {
    for (int e = 0; e < E; ++e) scores[size_t(e)] = 1.0f / (1.0f + std::exp(-logits[e]));
  }
  std::vector<float> choice = scores;
  if (!bias.empty())
    for (int e = 0; e < E; ++e) choice[size_t(e)] += bias[size_t(e)];
  const bool grouped = c.topk_method == "noaux_tc" || c.topk_method == "group_limited_greedy";
  if (grouped && G > 1) {
    // Group score: v3 sums each group's top-2 choice scores, v2 takes the group's max.
    std::vector<float> gs(static_cast<size_t>(G));
    for (int g = 0; g < G; ++g) {
      std::vector<float> grp(choice.begin() + g * per, choice.begin() + (g + 1) * per);
      std::sort(grp.begin(), grp.end(), std::greater<float>());
      gs[size_t(g)] = c.topk_method == "noaux_tc" ? grp[0] + (per > 1 ? grp[1] : 0.0f) : grp[0];
    }
    std::vector<bool> keep(size_t(G), false);
    for (int g : topk(gs, c.topk_group)) keep[size_t(g)] = true;
    for (int e = 0; e < E; ++e)
      if (!keep[size_t(e / per)]) choice[size_t(e)] = 0.0f;  // masked_fill(..., 0.0) as HF does
  }
  Route r;
  r.expert = topk(choice, c.experts_per_tok);
  double sum = 0;
  for (int e : r.expert) r.weight.push_back(scores[size_t(e)]), sum += scores[size_t(e)];
  // DeepSeek-V2 renormalises only when it picks more than one expert; the others always.
  if (c.norm_topk_prob && (c.family != Family::deepseek_v2 || c.experts_per_tok > 1)) {
    const float denom = float(sum) + 1e-20f;
    for (auto& w : r.weight) w /= denom;
  }
  for (auto& w : r.weight) w = float(w * c.routed_scaling_factor);
  return r;
}

}  // namespace

void Model::moe(const Layer& l, const float* x, int64_t n, float* y, Observer* obs) const {
  const ModelConfig& c = cfg_;
  const Moe& m = l.experts;
  const int64_t H = c.hidden, E = c.n_routed_experts;
  std::vector<float> logits(size_t(n * E));
  gemm_nt(n, E, H, 1.0f, x, H, m.router.data(), H, 0.0f, logits.data(), E);
  std::vector<Route> routes(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) routes[size_t(t)] = route(c, &logits[size_t(t * E)], m.score_bias);

  std::fill(y, y + n * H, 0.0f);
  std::vector<float> xin, yout;
  for (int64_t e = 0; e < E; ++e) {
    std::vector<int64_t> rows;
    std::vector<float> weights;
    for (int64_t t = 0; t < n; ++t) {
      const Route& r = routes[size_t(t)];
      for (size_t j = 0; j < r.expert.size(); ++j)
        if (r.expert[j] == e) rows.push_back(t), weights.push_back(r.weight[j]);
    }
    if (rows.empty()) continue;
    const int64_t nr = int64_t(rows.size());
    xin.resize(size_t(nr * H));
    yout.resize(size_t(nr * H));
    for (int64_t i = 0; i < nr; ++i) std::copy(x + rows[size_t(i)] * H, x + (rows[size_t(i)] + 1) * H, &xin[size_t(i * H)]);
    m.experts[size_t(e)].forward(xin.data(), nr, yout.data(), obs);
    for (int64_t i = 0; i < nr; ++i) {
      float* yr = y + rows[size_t(i)] * H;
      const float w = weights[size_t(i)];
      for (int64_t d = 0; d < H; ++d) yr[d] += yout[size_t(i * H + d)] * w;
    }
  }
  if (m.shared) {
    std::vector<float> s(size_t(n * H));
    m.shared->forward(x, n, s.data(), obs);
    for (int64_t i = 0; i < n * H; ++i) y[i] += s[size_t(i)];
  }
}

}  // namespace st::model
