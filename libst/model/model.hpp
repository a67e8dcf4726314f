// The decoder-only model: weights loaded from a checkpoint and an fp32 forward pass matching
// HF transformers or the family's remote code (every family of libst/arch/family.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "libst/core/callbacks.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/arch/config.hpp"
#include "libst/model/linear.hpp"
#include "libst/model/observer.hpp"
#include "libst/model/rope.hpp"

namespace st::model {

struct Mlp {
  Linear gate, up, down;
  Linear gate_up;  // gate and up fused in one tensor (rows: gate, then up); gate/up unused then
  void forward(const float* x, int64_t rows, float* y, Observer* obs) const;
  int64_t width() const { return down.in(); }
};

struct Moe {
  std::vector<float> router;      // [experts, hidden], fp32
  std::vector<float> score_bias;  // e_score_correction_bias [experts] (empty: none)
  std::vector<Mlp> experts;
  std::optional<Mlp> shared;
};

struct Attention {
  std::string prefix;  // model.layers.N.self_attn
  // standard attention (qkv: q, k and v fused in one tensor, rows q heads, k heads, v heads)
  Linear q, k, v, o, qkv;
  std::vector<float> q_norm, k_norm;  // qwen3 per-head RMSNorm weights [head_dim]
  // MLA
  Linear q_a, q_b, kv_a, kv_b;
  std::vector<float> q_a_norm, kv_a_norm;
  // Attention quantization (FAQuant / FAKQuant in the description): per-head symmetric int8
  // scales <prefix>.fa_{q,k,v}.scale; empty when off. FAQuant: q [heads], k and v [kv_heads],
  // applied to q, k after RoPE and v. FAKQuant (MLA): q [heads] on q_nope · W_UK, k and v [1]
  // on the KV latent, which then serves as K-nope and V in absorbed form.
  std::vector<float> fa_q, fa_k, fa_v;
};

struct Layer {
  std::vector<float> input_norm, post_norm;
  std::vector<float> attn_out_norm, mlp_out_norm;  // glm4's post_self_attn / post_mlp layernorms
  Attention attn;
  bool moe = false;
  Mlp mlp;
  Moe experts;
};

class Model {
 public:
  // Every weight in memory. progress: "layers loaded" of the decoder's (weights read and
  // converted to fp32).
  static Result<std::unique_ptr<Model>> load(const Checkpoint& ck, const ProgressFn& progress = {});
  // A streamed model: the config only; the embeddings, each decoder layer and the head are read
  // from ck when load_*() asks and freed by drop_*() (libst/model/layer_stream.hpp runs it).
  static Result<std::unique_ptr<Model>> open(std::shared_ptr<const Checkpoint> ck);
  bool streamed() const { return source_ != nullptr; }
  // On a streamed model: read a part's weights (checking shapes and values as load() does), or
  // free them. No-ops on a loaded model, and load_*() on a part already in memory.
  Status load_embed();
  Status load_layer(size_t li);
  Status load_head();  // the final norm and lm_head
  void drop_embed();
  void drop_layer(size_t li);
  void drop_head();

  const ModelConfig& config() const { return cfg_; }
  const std::string& path() const { return path_; }
  // Names of every linear in the decoder layers, in execution order (experts included).
  std::vector<std::string> linear_names() const;
  // The linear `name` of decoder layer li (loaded), or null.
  Linear* linear(size_t li, const std::string& name);

  // Floating-point operations of one forward pass over n tokens (of a streamed model: once each
  // layer has been loaded): 2 per multiply-add of every
  // linear (MoE: the routed experts' share, experts_per_tok / n_routed_experts) and of the causal
  // attention products (q·k over n(n+1)/2 pairs, and p·v).
  double forward_flops(int64_t n) const;

  // Runs tokens[0..n) as one sequence from position 0 and writes logits[n, vocab].
  // Errors: a token id >= vocab, n > max_position_embeddings.
  // Builds the RoPE tables for sequences up to n tokens; call before running forward() from
  // several threads on longer sequences than any before.
  void prepare(int64_t n) {
    std::lock_guard<std::mutex> lock(rope_mutex_);
    rope_.prepare(int(n));
  }
  // Safe to call from several threads at once (each with its own observer).
  Status forward(const int32_t* tokens, int64_t n, float* logits, Observer* obs = nullptr);

  // The pieces of forward(), for a driver that runs one layer over many sequences before the next
  // (prepare(n) first): check the tokens, embed them into h[n, hidden], run decoder layer li on
  // h in place, then the final norm into x[n, hidden] and lm_head into logits[n, vocab].
  Status check_tokens(const int32_t* tokens, int64_t n) const;
  size_t layers() const { return layers_.size(); }
  void embed(const int32_t* tokens, int64_t n, float* h) const;
  void run_layer(size_t li, float* h, int64_t n, Observer* obs);
  void head(const float* h, int64_t n, float* x, float* logits) const;

 private:
  Model(ModelConfig cfg);
  static Result<std::unique_ptr<Model>> make(const Checkpoint& ck);
  Status read_embed(const Checkpoint& ck);
  Status read_layer(const Checkpoint& ck, size_t li);
  Status read_head(const Checkpoint& ck);
  double layer_macs(const Layer& l) const;
  void attention(const Layer& l, const float* x, int64_t n, float* y, Observer* obs);
  void project_qkv(const Attention& at, const float* x, int64_t n, float* q, float* k, float* v, Observer* obs) const;
  void attention_mla(const Layer& l, const float* x, int64_t n, float* y, Observer* obs);
  void attention_mla_absorbed(const Layer& l, const std::vector<float>& q, const std::vector<float>& latent,
                              const std::vector<float>& ckv, int64_t n, float* o);
  void moe(const Layer& l, const float* x, int64_t n, float* y, Observer* obs) const;

  ModelConfig cfg_;
  std::string path_;
  std::shared_ptr<const Checkpoint> source_;  // a streamed model's weights
  std::vector<double> layer_macs_;            // multiply-adds per token of each layer, once read
  Rope rope_;
  std::mutex rope_mutex_;
  std::vector<float> embed_;  // [vocab, hidden]
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  Linear lm_head_;
  std::vector<float> alibi_slopes_;  // per head, when the model uses ALiBi instead of RoPE
};

// ALiBi head slopes as Baichuan's _get_interleave computes them: for a power of two n,
// start^(i+1) with start = 2^(-8/n); otherwise those of the largest power of two below n,
// then every other slope of twice that power.
std::vector<double> alibi_slopes(int heads);

// Shared pieces of the forward pass (also used by tests).
void rms_norm(const float* x, int64_t rows, int64_t dim, const float* w, double eps, float* y);
// Causal softmax attention for `heads` query heads sharing kv heads in groups of `group`.
// Row t of head h: q + t*q_ld + h*q_hs; kv head g = h / group: k + t*k_ld + g*k_hs, v likewise;
// output out + t*o_ld + h*dv. window > 0 limits keys to the last `window` positions. alibi:
// per-head slopes m_h, adding m_h * (j - t) to the scaled score of key j for query t.
struct AttnArgs {
  int64_t n = 0, heads = 0, group = 1, dqk = 0, dv = 0, window = 0;
  float scale = 1;
  const float* alibi = nullptr;
  const float* q = nullptr; int64_t q_ld = 0, q_hs = 0;
  const float* k = nullptr; int64_t k_ld = 0, k_hs = 0;
  const float* v = nullptr; int64_t v_ld = 0, v_hs = 0;
  float* out = nullptr; int64_t o_ld = 0;
};
void causal_attention(const AttnArgs& a);

}  // namespace st::model
