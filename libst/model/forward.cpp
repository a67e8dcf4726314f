// The decoder stack: embeddings, RMSNorm, residuals, MLP, final norm and lm_head.
#include <cmath>
#include <cstring>

#include "libst/model/model.hpp"
#include "libst/core/parallel.hpp"
#include "libst/model/vexp.hpp"

namespace st::model {

void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, double eps, float* y) {
  parallel_for(rows, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * dim;
      float* yr = y + r * dim;
      double ss = 0;
      for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
      const float var = float(ss / double(dim));
      const float inv = 1.0f / std::sqrt(var + float(eps));
      for (int64_t i = 0; i < dim; ++i) yr[i] = w[i] * (xr[i] * inv);
    }
  }, 64);
}

static void observe(Observer* obs, const Linear& l, const float* x, int64_t rows) {
  if (obs && rows > 0) obs->on_linear_input(l.name(), x, rows, l.in());
}

void Mlp::forward(const float* x, int64_t rows, float* y, Observer* obs) const {
  const int64_t inter = gate.out();
  std::vector<float> g(size_t(rows * inter)), u(size_t(rows * inter));
  observe(obs, gate, x, rows);
  gate.forward(x, rows, g.data());
  observe(obs, up, x, rows);
  up.forward(x, rows, u.data());
  parallel_for(int64_t(g.size()), [&](int64_t b, int64_t e) { silu_mul(&g[size_t(b)], &u[size_t(b)], e - b); }, 16384);
  observe(obs, down, g.data(), rows);
  down.forward(g.data(), rows, y);
}

Status Model::forward(const int32_t* tokens, int64_t n, float* logits, Observer* obs) {
  const ModelConfig& c = cfg_;
  if (n <= 0) return make_error(Errc::usage, "empty sequence");
  if (n > c.max_positions)
    return make_error(Errc::usage, "sequence of " + std::to_string(n) + " tokens is longer than max_position_embeddings (" +
                                       std::to_string(c.max_positions) + ")");
  for (int64_t t = 0; t < n; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.vocab)
      return make_error(Errc::usage, "token id " + std::to_string(tokens[t]) + " at position " + std::to_string(t) +
                                         " is outside the vocabulary (size " + std::to_string(c.vocab) + ")");
  {
    std::lock_guard<std::mutex> lock(rope_mutex_);  // tables only grow; readers need them complete
    rope_.prepare(int(n));
  }
  const int64_t H = c.hidden;
  std::vector<float> h(size_t(n * H)), x(size_t(n * H)), y(size_t(n * H));
  for (int64_t t = 0; t < n; ++t) std::memcpy(&h[size_t(t * H)], &embed_[size_t(tokens[t]) * H], size_t(H) * 4);
  if (obs) obs->on_hidden(0, h.data(), n, H);
  for (size_t li = 0; li < layers_.size(); ++li) {
    const Layer& l = layers_[li];
    rms_norm(h.data(), n, H, l.input_norm.data(), c.rms_eps, x.data());
    if (c.mla) attention_mla(l, x.data(), n, y.data(), obs);
    else attention(l, x.data(), n, y.data(), obs);
    for (size_t i = 0; i < h.size(); ++i) h[i] += y[i];
    rms_norm(h.data(), n, H, l.post_norm.data(), c.rms_eps, x.data());
    if (l.moe) moe(l, x.data(), n, y.data(), obs);
    else l.mlp.forward(x.data(), n, y.data(), obs);
    for (size_t i = 0; i < h.size(); ++i) h[i] += y[i];
    if (obs && li + 1 < layers_.size()) obs->on_hidden(int(li + 1), h.data(), n, H);
  }
  rms_norm(h.data(), n, H, final_norm_.data(), c.rms_eps, x.data());
  if (obs) obs->on_hidden(int(layers_.size()), x.data(), n, H);
  lm_head_.forward(x.data(), n, logits);
  return {};
}

}  // namespace st::model
