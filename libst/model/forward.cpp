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

std::vector<double> alibi_slopes(int heads) {
  auto power_of_2 = [](int n) {
    const double start = std::pow(2.0, -std::pow(2.0, -(std::log2(double(n)) - 3)));
    std::vector<double> s;
    for (int i = 0; i < n; ++i) s.push_back(start * std::pow(start, i));
    return s;
  };
  const int p = 1 << int(std::floor(std::log2(double(heads))));
  std::vector<double> s = power_of_2(p);
  if (p == heads) return s;
  const std::vector<double> more = alibi_slopes(2 * p);
  for (int i = 0; i < heads - p; ++i) s.push_back(more[size_t(2 * i)]);
  return s;
}

static void observe(Observer* obs, const Linear& l, const float* x, int64_t rows) {
  if (obs && rows > 0) obs->on_linear_input(l.name(), x, rows, l.in());
}

void Mlp::forward(const float* x, int64_t rows, float* y, Observer* obs) const {
  const int64_t inter = width();
  std::vector<float> g(size_t(rows * inter)), u(size_t(rows * inter));
  if (!gate_up.name().empty()) {
    // One GEMM for both halves; each row is [gate | up].
    std::vector<float> gu(size_t(rows * 2 * inter));
    observe(obs, gate_up, x, rows);
    gate_up.forward(x, rows, gu.data());
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(&g[size_t(r * inter)], &gu[size_t(r * 2 * inter)], size_t(inter) * 4);
      std::memcpy(&u[size_t(r * inter)], &gu[size_t(r * 2 * inter + inter)], size_t(inter) * 4);
    }
  } else {
    observe(obs, gate, x, rows);
    gate.forward(x, rows, g.data());
    observe(obs, up, x, rows);
    up.forward(x, rows, u.data());
  }
  parallel_for(int64_t(g.size()), [&](int64_t b, int64_t e) { silu_mul(&g[size_t(b)], &u[size_t(b)], e - b); }, 16384);
  observe(obs, down, g.data(), rows);
  down.forward(g.data(), rows, y);
}

Model::Model(ModelConfig cfg) : cfg_(std::move(cfg)), rope_(cfg_.rope, cfg_.rope_dim(), cfg_.rope_interleave) {
  if (cfg_.alibi)
    for (double s : alibi_slopes(cfg_.heads)) alibi_slopes_.push_back(float(s));
}

Status Model::check_tokens(const int32_t* tokens, int64_t n) const {
  const ModelConfig& c = cfg_;
  if (n <= 0) return make_error(Errc::usage, "empty sequence");
  if (n > c.max_positions)
    return make_error(Errc::usage, "sequence of " + std::to_string(n) + " tokens is longer than max_position_embeddings (" +
                                       std::to_string(c.max_positions) + ")");
  for (int64_t t = 0; t < n; ++t)
    if (tokens[t] < 0 || tokens[t] >= c.vocab)
      return make_error(Errc::usage, "token id " + std::to_string(tokens[t]) + " at position " + std::to_string(t) +
                                         " is outside the vocabulary (size " + std::to_string(c.vocab) + ")");
  return {};
}

void Model::embed(const int32_t* tokens, int64_t n, float* h) const {
  const int64_t H = cfg_.hidden;
  for (int64_t t = 0; t < n; ++t) std::memcpy(&h[t * H], &embed_[size_t(tokens[t]) * H], size_t(H) * 4);
}

// h += out_norm(block(norm(h))): the attention, then the MLP or experts (glm4 normalises each
// block's output before the residual add).
void Model::run_layer(size_t li, float* h, int64_t n, Observer* obs) {
  const ModelConfig& c = cfg_;
  const Layer& l = layers_[li];
  const int64_t H = c.hidden, count = n * H;
  std::vector<float> x(static_cast<size_t>(count)), y(static_cast<size_t>(count));
  rms_norm(h, n, H, l.input_norm.data(), c.rms_eps, x.data());
  if (c.mla) attention_mla(l, x.data(), n, y.data(), obs);
  else attention(l, x.data(), n, y.data(), obs);
  if (!l.attn_out_norm.empty()) rms_norm(y.data(), n, H, l.attn_out_norm.data(), c.rms_eps, y.data());
  for (int64_t i = 0; i < count; ++i) h[i] += y[size_t(i)];
  rms_norm(h, n, H, l.post_norm.data(), c.rms_eps, x.data());
  if (l.moe) moe(l, x.data(), n, y.data(), obs);
  else l.mlp.forward(x.data(), n, y.data(), obs);
  if (!l.mlp_out_norm.empty()) rms_norm(y.data(), n, H, l.mlp_out_norm.data(), c.rms_eps, y.data());
  for (int64_t i = 0; i < count; ++i) h[i] += y[size_t(i)];
}

void Model::head(const float* h, int64_t n, float* x, float* logits) const {
  rms_norm(h, n, cfg_.hidden, final_norm_.data(), cfg_.rms_eps, x);
  lm_head_.forward(x, n, logits);
}

Status Model::forward(const int32_t* tokens, int64_t n, float* logits, Observer* obs) {
  if (source_) return make_error(Errc::usage, "a streamed model runs through run_layers", path_);
  ST_CHECK(check_tokens(tokens, n));
  {
    std::lock_guard<std::mutex> lock(rope_mutex_);  // tables only grow; readers need them complete
    rope_.prepare(int(n));
  }
  const int64_t H = cfg_.hidden;
  std::vector<float> h(size_t(n * H)), x(size_t(n * H));
  embed(tokens, n, h.data());
  if (obs) obs->on_hidden(0, h.data(), n, H);
  for (size_t li = 0; li < layers_.size(); ++li) {
    run_layer(li, h.data(), n, obs);
    if (obs && li + 1 < layers_.size()) obs->on_hidden(int(li + 1), h.data(), n, H);
  }
  head(h.data(), n, x.data(), logits);
  if (obs) obs->on_hidden(int(layers_.size()), x.data(), n, H);
  return {};
}

}  // namespace st::model
