// Attention: causal softmax core (sliding window, ALiBi), standard GQA attention (separate or
// fused q/k/v, full or partial RoPE, qwen3's q/k norms) and MLA.
#include <algorithm>
#include <cmath>
#include <limits>

#include "libst/model/model.hpp"
#include "libst/core/blas.hpp"
#include "libst/core/parallel.hpp"
#include "libst/model/vexp.hpp"

namespace st::model {

namespace {
constexpr int64_t kQueryBlock = 128;

void observe(Observer* obs, const Linear& l, const float* x, int64_t rows) {
  if (obs && rows > 0) obs->on_linear_input(l.name(), x, rows, l.in());
}
// Symmetric int8 fake quantization per head: x = clamp(round(x / s), -128, 127) * s, which is
// what an int8 attention kernel's scaled integer products compute.
void quantize_heads(float* x, int64_t rows, int64_t heads, int64_t dim, const std::vector<float>& scale) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h) {
      const float s = scale[size_t(h)];
      float* p = x + (r * heads + h) * dim;
      for (int64_t d = 0; d < dim; ++d) p[d] = std::clamp(std::nearbyint(p[d] / s), -128.0f, 127.0f) * s;
    }
}

}  // namespace

void causal_attention(const AttnArgs& a) {
  // Heads run one after another; each GEMM uses the BLAS threads. Query blocks only look at
  // keys up to their last row, which skips most of the masked upper triangle.
  std::vector<float> s(size_t(kQueryBlock * a.n));
  for (int64_t h = 0; h < a.heads; ++h) {
    const int64_t g = h / a.group;
    const float* q = a.q + h * a.q_hs;
    const float* k = a.k + g * a.k_hs;
    const float* v = a.v + g * a.v_hs;
    float* o = a.out + h * a.dv;
    for (int64_t t0 = 0; t0 < a.n; t0 += kQueryBlock) {
      const int64_t rows = std::min(kQueryBlock, a.n - t0), keys = t0 + rows;
      const int64_t k0 = a.window > 0 ? std::max<int64_t>(0, t0 - a.window + 1) : 0;
      const int64_t nk = keys - k0;
      gemm_nt(rows, nk, a.dqk, a.scale, q + t0 * a.q_ld, a.q_ld, k + k0 * a.k_ld, a.k_ld, 0.0f, s.data(), nk);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r;
        float* sr = s.data() + r * nk;
        const int64_t lo = a.window > 0 ? std::max<int64_t>(0, t - a.window + 1) - k0 : 0, hi = t - k0;  // inclusive
        if (a.alibi)
          for (int64_t j = lo; j <= hi; ++j) sr[j] += a.alibi[h] * float(k0 + j - t);
        const float mx = max_of(sr + lo, hi - lo + 1);
        const float inv = float(1.0 / exp_shift_inplace(sr + lo, hi - lo + 1, mx));
        std::fill(sr, sr + lo, 0.0f);
        for (int64_t j = lo; j <= hi; ++j) sr[j] *= inv;
        std::fill(sr + hi + 1, sr + nk, 0.0f);
      }
      gemm_nn(rows, a.dv, nk, 1.0f, s.data(), nk, v + k0 * a.v_ld, a.v_ld, 0.0f, o + t0 * a.o_ld, a.o_ld);
    }
  }
}

// q [n, HQ*D], k and v [n, HK*D] from the attention input: three linears, or one fused tensor
// whose output rows are q, then k, then v.
void Model::project_qkv(const Attention& at, const float* x, int64_t n, float* q, float* k, float* v, Observer* obs) const {
  if (at.qkv.name().empty()) {
    observe(obs, at.q, x, n);
    at.q.forward(x, n, q);
    observe(obs, at.k, x, n);
    at.k.forward(x, n, k);
    observe(obs, at.v, x, n);
    at.v.forward(x, n, v);
    return;
  }
  const int64_t nq = int64_t(cfg_.heads) * cfg_.head_dim, nkv = int64_t(cfg_.kv_heads) * cfg_.head_dim;
  const int64_t w = nq + 2 * nkv;
  std::vector<float> all(size_t(n * w));
  observe(obs, at.qkv, x, n);
  at.qkv.forward(x, n, all.data());
  for (int64_t t = 0; t < n; ++t) {
    const float* row = &all[size_t(t * w)];
    std::copy(row, row + nq, q + t * nq);
    std::copy(row + nq, row + nq + nkv, k + t * nkv);
    std::copy(row + nq + nkv, row + w, v + t * nkv);
  }
}

void Model::attention(const Layer& l, const float* x, int64_t n, float* y, Observer* obs) {
  const ModelConfig& c = cfg_;
  const Attention& at = l.attn;
  const int64_t D = c.head_dim, HQ = c.heads, HK = c.kv_heads;
  std::vector<float> q(size_t(n * HQ * D)), k(size_t(n * HK * D)), v(size_t(n * HK * D)), o(size_t(n * HQ * D));
  project_qkv(at, x, n, q.data(), k.data(), v.data(), obs);
  if (!at.q_norm.empty()) {
    rms_norm(q.data(), n * HQ, D, at.q_norm.data(), c.rms_eps, q.data());
    rms_norm(k.data(), n * HK, D, at.k_norm.data(), c.rms_eps, k.data());
  }
  // RoPE on the first rope_.dim() dimensions of each head (all of them unless partial).
  if (alibi_slopes_.empty())
    parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        for (int64_t h = 0; h < HQ; ++h) rope_.apply(&q[size_t((t * HQ + h) * D)], int(t));
        for (int64_t h = 0; h < HK; ++h) rope_.apply(&k[size_t((t * HK + h) * D)], int(t));
      }
    }, 32);
  if (obs && obs->wants_attention()) {
    obs->on_attention(at.prefix, "q", q.data(), n, HQ, D);
    obs->on_attention(at.prefix, "k", k.data(), n, HK, D);
    obs->on_attention(at.prefix, "v", v.data(), n, HK, D);
  }
  if (!at.fa_q.empty()) {
    quantize_heads(q.data(), n, HQ, D, at.fa_q);
    quantize_heads(k.data(), n, HK, D, at.fa_k);
    quantize_heads(v.data(), n, HK, D, at.fa_v);
  }
  AttnArgs a;
  a.n = n, a.heads = HQ, a.group = HQ / HK, a.dqk = D, a.dv = D, a.window = c.sliding_window;
  a.scale = float(c.attention_scale());
  a.alibi = alibi_slopes_.empty() ? nullptr : alibi_slopes_.data();
  a.q = q.data(), a.q_ld = HQ * D, a.q_hs = D;
  a.k = k.data(), a.k_ld = HK * D, a.k_hs = D;
  a.v = v.data(), a.v_ld = HK * D, a.v_hs = D;
  a.out = o.data(), a.o_ld = HQ * D;
  causal_attention(a);
  observe(obs, at.o, o.data(), n);
  at.o.forward(o.data(), n, y);
}

void Model::attention_mla(const Layer& l, const float* x, int64_t n, float* y, Observer* obs) {
  const ModelConfig& c = cfg_;
  const Attention& at = l.attn;
  const int64_t H = c.heads, dn = c.qk_nope_dim, dr = c.qk_rope_dim, dv = c.v_head_dim, dqk = dn + dr;
  const int64_t R = c.kv_lora_rank;
  std::vector<float> q(size_t(n * H * dqk));
  if (c.q_lora_rank > 0) {
    std::vector<float> qa(size_t(n * c.q_lora_rank));
    observe(obs, at.q_a, x, n);
    at.q_a.forward(x, n, qa.data());
    rms_norm(qa.data(), n, c.q_lora_rank, at.q_a_norm.data(), c.rms_eps, qa.data());
    observe(obs, at.q_b, qa.data(), n);
    at.q_b.forward(qa.data(), n, q.data());
  } else {
    observe(obs, at.q, x, n);
    at.q.forward(x, n, q.data());
  }
  std::vector<float> ckv(size_t(n * (R + dr))), latent(size_t(n * R));
  observe(obs, at.kv_a, x, n);
  at.kv_a.forward(x, n, ckv.data());
  for (int64_t t = 0; t < n; ++t)
    std::copy(&ckv[size_t(t * (R + dr))], &ckv[size_t(t * (R + dr) + R)], &latent[size_t(t * R)]);
  rms_norm(latent.data(), n, R, at.kv_a_norm.data(), c.rms_eps, latent.data());
  std::vector<float> kv(size_t(n * H * (dn + dv)));
  observe(obs, at.kv_b, latent.data(), n);
  at.kv_b.forward(latent.data(), n, kv.data());

  // Keys: per head [k_nope | k_rot], k_rot shared by all heads.
  std::vector<float> key(size_t(n * H * dqk));
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      float* kr = &ckv[size_t(t * (R + dr) + R)];
      rope_.apply(kr, int(t));
      for (int64_t h = 0; h < H; ++h) {
        float* qh = &q[size_t((t * H + h) * dqk)];
        rope_.apply(qh + dn, int(t));
        float* kh = &key[size_t((t * H + h) * dqk)];
        const float* kvh = &kv[size_t((t * H + h) * (dn + dv))];
        std::copy(kvh, kvh + dn, kh);
        std::copy(kr, kr + dr, kh + dn);
      }
    }
  }, 32);
  if (obs && obs->wants_attention()) {
    // q_nope absorbed into the latent space: q_abs[h] = q_nope[h] · W_UK[h], W_UK[h] = the
    // first dn rows of head h's block in kv_b_proj's weight [H*(dn+dv), R].
    const std::vector<float> w = at.kv_b.float_weight();
    std::vector<float> qabs(size_t(n * H * R));
    for (int64_t h = 0; h < H; ++h)
      gemm_nn(n, R, dn, 1.0f, &q[size_t(h * dqk)], H * dqk, &w[size_t(h * (dn + dv) * R)], R, 0.0f,
              &qabs[size_t(h * R)], H * R);
    obs->on_attention(at.prefix, "q_absorbed", qabs.data(), n, H, R);
    obs->on_attention(at.prefix, "kv_latent", latent.data(), n, 1, R);
  }
  std::vector<float> o(size_t(n * H * dv));
  if (!at.fa_q.empty()) {
    attention_mla_absorbed(l, q, latent, ckv, n, o.data());
    observe(obs, at.o, o.data(), n);
    at.o.forward(o.data(), n, y);
    return;
  }
  AttnArgs a;
  a.n = n, a.heads = H, a.group = 1, a.dqk = dqk, a.dv = dv, a.window = 0;
  a.scale = float(c.attention_scale());
  a.q = q.data(), a.q_ld = H * dqk, a.q_hs = dqk;
  a.k = key.data(), a.k_ld = H * dqk, a.k_hs = dqk;
  a.v = kv.data() + dn, a.v_ld = H * (dn + dv), a.v_hs = dn + dv;
  a.out = o.data(), a.o_ld = H * dv;
  causal_attention(a);
  observe(obs, at.o, o.data(), n);
  at.o.forward(o.data(), n, y);
}

// MLA with FAKQuant, in the absorbed form an MLA kernel with an int8 latent cache runs:
// per head, q_abs = q_nope · W_UK (quantized with fa_q), keys [latent_k | k_rot] with the latent
// quantized with fa_k, values the latent quantized with fa_v, and the attention output mapped
// back through W_UV. The RoPE part stays float. Without quantization this equals the plain path.
void Model::attention_mla_absorbed(const Layer& l, const std::vector<float>& q, const std::vector<float>& latent,
                                   const std::vector<float>& ckv, int64_t n, float* o) {
  const ModelConfig& c = cfg_;
  const Attention& at = l.attn;
  const int64_t H = c.heads, dn = c.qk_nope_dim, dr = c.qk_rope_dim, dv = c.v_head_dim, dqk = dn + dr;
  const int64_t R = c.kv_lora_rank, dq = R + dr;
  const std::vector<float> w = at.kv_b.float_weight();  // [H*(dn+dv), R]
  std::vector<float> qa(size_t(n * H * dq)), key(size_t(n * dq)), val(latent);
  for (int64_t h = 0; h < H; ++h)
    gemm_nn(n, R, dn, 1.0f, &q[size_t(h * dqk)], H * dqk, &w[size_t(h * (dn + dv) * R)], R, 0.0f, &qa[size_t(h * dq)],
            H * dq);
  std::vector<float> qabs(size_t(n * H * R));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < H; ++h) std::copy_n(&qa[size_t((t * H + h) * dq)], R, &qabs[size_t((t * H + h) * R)]);
  quantize_heads(qabs.data(), n, H, R, at.fa_q);
  std::vector<float> lk(latent);
  quantize_heads(lk.data(), n, 1, R, at.fa_k);
  quantize_heads(val.data(), n, 1, R, at.fa_v);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      float* dst = &qa[size_t((t * H + h) * dq)];
      std::copy_n(&qabs[size_t((t * H + h) * R)], R, dst);
      std::copy_n(&q[size_t((t * H + h) * dqk + dn)], dr, dst + R);  // roped q_rot
    }
    std::copy_n(&lk[size_t(t * R)], R, &key[size_t(t * dq)]);
    std::copy_n(&ckv[size_t(t * (R + dr) + R)], dr, &key[size_t(t * dq + R)]);  // roped k_rot
  }
  std::vector<float> olat(size_t(n * H * R));
  AttnArgs a;
  a.n = n, a.heads = H, a.group = H, a.dqk = dq, a.dv = R, a.window = 0;
  a.scale = float(c.attention_scale());
  a.q = qa.data(), a.q_ld = H * dq, a.q_hs = dq;
  a.k = key.data(), a.k_ld = dq, a.k_hs = 0;
  a.v = val.data(), a.v_ld = R, a.v_hs = 0;
  a.out = olat.data(), a.o_ld = H * R;
  causal_attention(a);
  // o[t, h, :] = olat[t, h, :] · W_UV[h]^T, W_UV[h] = rows dn..dn+dv of head h's block.
  for (int64_t h = 0; h < H; ++h)
    gemm_nt(n, dv, R, 1.0f, &olat[size_t(h * R)], H * R, &w[size_t((h * (dn + dv) + dn) * R)], R, 0.0f,
            o + h * dv, H * dv);
}

}  // namespace st::model
