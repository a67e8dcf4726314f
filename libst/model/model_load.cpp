// Loading a Model's weights from a checkpoint, checking every shape against the config.
#include <algorithm>
#include <cmath>

#include "libst/model/model.hpp"

namespace st::model {

namespace {

Result<std::vector<float>> read_vec(const Checkpoint& ck, const std::string& name, uint64_t numel) {
  const TensorEntry* e = ck.find(name);
  if (!e) return make_error(Errc::format, "tensor missing", ck.path(), name);
  if (e->info->numel() != numel)
    return make_error(Errc::format,
                      "expected " + std::to_string(numel) + " elements, found " + std::to_string(e->info->numel()),
                      ck.path(), name);
  ST_ASSIGN(auto v, ck.read_f32(*e));
  ck.release(*e);
  for (float f : v)
    if (!std::isfinite(f)) return make_error(Errc::numeric, "NaN or Inf value", ck.path(), name);
  return v;
}

Result<Linear> linear(const Checkpoint& ck, const std::string& name, int64_t out, int64_t in) {
  ST_ASSIGN(Linear l, Linear::load(ck, name));
  if (l.out() != out || l.in() != in)
    return make_error(Errc::format,
                      "expected weight shape [" + std::to_string(out) + ", " + std::to_string(in) + "], found [" +
                          std::to_string(l.out()) + ", " + std::to_string(l.in()) + "]",
                      ck.path(), name + ".weight");
  return l;
}

// An MLP under p with these leaf names; its width from the checkpoint's gate (shared experts
// use a multiple of moe_intermediate_size).
Result<Mlp> mlp(const Checkpoint& ck, const std::string& p, int64_t hidden, const std::string& gate, const std::string& up,
                const std::string& down) {
  const TensorEntry* g = ck.find(p + "." + gate + ".weight");
  if (!g || g->info->shape.size() != 2)
    return make_error(Errc::format, "tensor missing or not 2-D", ck.path(), p + "." + gate + ".weight");
  const int64_t inter = g->info->shape[0];
  Mlp m;
  ST_ASSIGN(m.gate, linear(ck, p + "." + gate, inter, hidden));
  ST_ASSIGN(m.up, linear(ck, p + "." + up, inter, hidden));
  ST_ASSIGN(m.down, linear(ck, p + "." + down, hidden, inter));
  return m;
}

// The dense MLP of a layer: gate/up/down, or a fused gate_up (rows gate, then up) and down.
Result<Mlp> dense_mlp(const Checkpoint& ck, const ModelConfig& c, const std::string& p) {
  const TensorNames& n = c.names();
  if (n.gate_up.empty()) return mlp(ck, p, c.hidden, n.gate, n.up, n.down);
  Mlp m;
  ST_ASSIGN(m.gate_up, linear(ck, p + "." + n.gate_up, 2 * int64_t(c.intermediate), c.hidden));
  ST_ASSIGN(m.down, linear(ck, p + "." + n.down, c.hidden, c.intermediate));
  return m;
}

Status load_attention(const Checkpoint& ck, const ModelConfig& c, Attention& a) {
  const std::string& p = a.prefix;
  if (!c.mla) {
    const TensorNames& n = c.names();
    const int64_t nq = int64_t(c.heads) * c.head_dim, nkv = int64_t(c.kv_heads) * c.head_dim;
    if (!n.qkv.empty()) {
      ST_ASSIGN(a.qkv, linear(ck, p + "." + n.qkv, nq + 2 * nkv, c.hidden));
    } else {
      ST_ASSIGN(a.q, linear(ck, p + "." + n.q, nq, c.hidden));
      ST_ASSIGN(a.k, linear(ck, p + "." + n.k, nkv, c.hidden));
      ST_ASSIGN(a.v, linear(ck, p + "." + n.v, nkv, c.hidden));
    }
    ST_ASSIGN(a.o, linear(ck, p + "." + n.o, c.hidden, nq));
    if (c.family == Family::qwen3 || c.family == Family::qwen3_moe || ck.find(p + ".q_norm.weight")) {
      ST_ASSIGN(a.q_norm, read_vec(ck, p + ".q_norm.weight", uint64_t(c.head_dim)));
      ST_ASSIGN(a.k_norm, read_vec(ck, p + ".k_norm.weight", uint64_t(c.head_dim)));
    }
    return {};
  }
  const int64_t qk = c.qk_head_dim();
  if (c.q_lora_rank > 0) {
    ST_ASSIGN(a.q_a, linear(ck, p + ".q_a_proj", c.q_lora_rank, c.hidden));
    ST_ASSIGN(a.q_a_norm, read_vec(ck, p + ".q_a_layernorm.weight", uint64_t(c.q_lora_rank)));
    ST_ASSIGN(a.q_b, linear(ck, p + ".q_b_proj", c.heads * qk, c.q_lora_rank));
  } else {
    ST_ASSIGN(a.q, linear(ck, p + ".q_proj", c.heads * qk, c.hidden));
  }
  ST_ASSIGN(a.kv_a, linear(ck, p + ".kv_a_proj_with_mqa", c.kv_lora_rank + c.qk_rope_dim, c.hidden));
  ST_ASSIGN(a.kv_a_norm, read_vec(ck, p + ".kv_a_layernorm.weight", uint64_t(c.kv_lora_rank)));
  ST_ASSIGN(a.kv_b, linear(ck, p + ".kv_b_proj", int64_t(c.heads) * (c.qk_nope_dim + c.v_head_dim), c.kv_lora_rank));
  ST_ASSIGN(a.o, linear(ck, p + ".o_proj", c.hidden, int64_t(c.heads) * c.v_head_dim));
  return {};
}

// <attn>.fa_{q,k,v}.scale when the description turns attention quantization on.
Status load_fa(const Checkpoint& ck, const ModelConfig& c, Attention& a) {
  const auto& d = ck.description();
  if (!d || !d->top("fa_quant_type")) return {};
  const std::string type = *d->top("fa_quant_type");
  if (type != "FAQuant" && type != "FAKQuant")
    return make_error(Errc::unsupported, "fa_quant_type '" + type + "' cannot be run", ck.path());
  if ((type == "FAKQuant") != c.mla)
    return make_error(Errc::format, type + " does not fit a " + (c.mla ? "MLA" : "non-MLA") + " model", ck.path());
  // A block without scales was kept float (st-quant-w8a8 --fa-fallback, msModelSlim's rollback).
  if (!ck.find(a.prefix + ".fa_q.scale") && !ck.find(a.prefix + ".fa_k.scale") && !ck.find(a.prefix + ".fa_v.scale"))
    return {};
  const uint64_t kv = c.mla ? 1 : uint64_t(c.kv_heads);
  ST_ASSIGN(a.fa_q, read_vec(ck, a.prefix + ".fa_q.scale", uint64_t(c.heads)));
  ST_ASSIGN(a.fa_k, read_vec(ck, a.prefix + ".fa_k.scale", kv));
  ST_ASSIGN(a.fa_v, read_vec(ck, a.prefix + ".fa_v.scale", kv));
  for (const auto* v : {&a.fa_q, &a.fa_k, &a.fa_v})
    for (float f : *v)
      if (!(f > 0)) return make_error(Errc::numeric, "attention scales must be positive", ck.path(), a.prefix + ".fa_*.scale");
  return {};
}

Status load_moe(const Checkpoint& ck, const ModelConfig& c, const std::string& p, Moe& m) {
  ST_ASSIGN(m.router, read_vec(ck, p + ".gate.weight", uint64_t(c.n_routed_experts) * c.hidden));
  if (ck.find(p + ".gate.e_score_correction_bias")) {
    ST_ASSIGN(m.score_bias, read_vec(ck, p + ".gate.e_score_correction_bias", uint64_t(c.n_routed_experts)));
  }
  const TensorNames& n = c.names();
  for (int e = 0; e < c.n_routed_experts; ++e) {
    ST_ASSIGN(Mlp x, mlp(ck, p + ".experts." + std::to_string(e), c.hidden, n.expert_gate, n.expert_up, n.expert_down));
    m.experts.push_back(std::move(x));
  }
  if (c.n_shared_experts > 0) {
    ST_ASSIGN(m.shared, mlp(ck, p + ".shared_experts", c.hidden, "gate_proj", "up_proj", "down_proj"));
  }
  return {};
}

// lm_head (or the tied embeddings); Baichuan2's NormHead divides each row by its L2 norm
// (torch.nn.functional.normalize, eps 1e-12) before use.
Result<Linear> load_lm_head(const Checkpoint& ck, const ModelConfig& c, const std::vector<float>& embed) {
  const std::string& name = c.names().lm_head;
  const bool stored = ck.find(name + ".weight") != nullptr;
  if (!stored && !c.tie_embeddings)
    return make_error(Errc::format, "tensor missing (and tie_word_embeddings is off)", ck.path(), name + ".weight");
  if (!c.norm_head) {
    if (stored) return linear(ck, name, c.vocab, c.hidden);
    return Linear::from_float(name, c.vocab, c.hidden, embed);
  }
  std::vector<float> w = embed;
  if (stored) {
    ST_ASSIGN(Linear l, linear(ck, name, c.vocab, c.hidden));
    w = l.float_weight();
  }
  const int64_t H = c.hidden;
  for (int64_t r = 0; r < c.vocab; ++r) {
    float* row = &w[size_t(r * H)];
    double ss = 0;
    for (int64_t i = 0; i < H; ++i) ss += double(row[i]) * row[i];
    const float inv = float(1.0 / std::max(std::sqrt(ss), 1e-12));
    for (int64_t i = 0; i < H; ++i) row[i] *= inv;
  }
  return Linear::from_float(name, c.vocab, c.hidden, std::move(w));
}

}  // namespace

Result<std::unique_ptr<Model>> Model::make(const Checkpoint& ck) {
  if (!ck.has_config()) return make_error(Errc::format, "no config.json beside the weights", ck.path());
  ST_ASSIGN(const ModelConfig c, read_config(ck));
  if (Status runs = c.runnable(); !runs) return std::move(runs).error().in_file(config_origin(ck));
  if (c.rope_dim() > 1024 || c.rope_dim() % 2)
    return make_error(Errc::unsupported, "rotary dimension must be even and at most 1024", ck.path());
  std::unique_ptr<Model> m(new Model(c));
  m->path_ = ck.path();
  m->layers_.resize(size_t(c.layers));
  m->layer_macs_.assign(size_t(c.layers), 0.0);
  return m;
}

Result<std::unique_ptr<Model>> Model::load(const Checkpoint& ck, const ProgressFn& progress) {
  ST_ASSIGN(auto m, make(ck));
  const uint64_t layers = m->layers_.size();
  if (progress) progress({"layers loaded", 0, layers, 0, "layers"});
  ST_CHECK(m->read_embed(ck));
  for (size_t i = 0; i < layers; ++i) {
    ST_CHECK(m->read_layer(ck, i));
    if (progress) progress({"layers loaded", uint64_t(i + 1), layers, uint64_t(i + 1), "layers"});
  }
  ST_CHECK(m->read_head(ck));
  return m;
}

Result<std::unique_ptr<Model>> Model::open(std::shared_ptr<const Checkpoint> ck) {
  ST_ASSIGN(auto m, make(*ck));
  m->source_ = std::move(ck);
  return m;
}

Status Model::read_embed(const Checkpoint& ck) {
  ST_ASSIGN(embed_, read_vec(ck, cfg_.names().embed, uint64_t(cfg_.vocab) * uint64_t(cfg_.hidden)));
  return {};
}

Status Model::read_layer(const Checkpoint& ck, size_t li) {
  const ModelConfig& c = cfg_;
  const TensorNames& n = c.names();
  const uint64_t H = uint64_t(c.hidden);
  const int i = int(li);
  const std::string p = n.layer(i);
  Layer l;
  ST_ASSIGN(l.input_norm, read_vec(ck, p + "." + n.input_norm + ".weight", H));
  ST_ASSIGN(l.post_norm, read_vec(ck, p + "." + n.post_norm + ".weight", H));
  if (c.sandwich_norms) {
    ST_ASSIGN(l.attn_out_norm, read_vec(ck, p + ".post_self_attn_layernorm.weight", H));
    ST_ASSIGN(l.mlp_out_norm, read_vec(ck, p + ".post_mlp_layernorm.weight", H));
  }
  l.attn.prefix = p + "." + n.attn;
  ST_CHECK(load_attention(ck, c, l.attn));
  ST_CHECK(load_fa(ck, c, l.attn));
  l.moe = c.is_moe_layer(i);
  if (l.moe) {
    ST_CHECK(load_moe(ck, c, p + "." + n.moe, l.experts));
  } else {
    ST_ASSIGN(l.mlp, dense_mlp(ck, c, p + "." + n.mlp));
  }
  layer_macs_[li] = layer_macs(l);
  layers_[li] = std::move(l);
  return {};
}

Status Model::read_head(const Checkpoint& ck) {
  ST_ASSIGN(final_norm_, read_vec(ck, cfg_.names().final_norm, uint64_t(cfg_.hidden)));
  if (cfg_.tie_embeddings && !ck.find(cfg_.names().lm_head + ".weight") && embed_.empty()) {
    ST_CHECK(read_embed(ck));  // a streamed model's tied head: the embeddings again, then only the head
    ST_ASSIGN(lm_head_, load_lm_head(ck, cfg_, embed_));
    std::vector<float>().swap(embed_);
    return {};
  }
  ST_ASSIGN(lm_head_, load_lm_head(ck, cfg_, embed_));
  return {};
}

Status Model::load_embed() { return !source_ || !embed_.empty() ? Status{} : read_embed(*source_); }
Status Model::load_layer(size_t li) { return !source_ || layers_[li].attn.prefix.size() ? Status{} : read_layer(*source_, li); }
Status Model::load_head() { return !source_ || !final_norm_.empty() ? Status{} : read_head(*source_); }

void Model::drop_embed() {
  if (source_) std::vector<float>().swap(embed_);
}
void Model::drop_layer(size_t li) {
  if (source_) layers_[li] = Layer{};
}
void Model::drop_head() {
  if (!source_) return;
  std::vector<float>().swap(final_norm_);
  lm_head_ = Linear{};
}

namespace {

// Every linear of a layer, in execution order (unused slots have no name).
template <class L, class Fn>
void visit_linears(L& l, Fn&& fn) {
  auto& a = l.attn;
  for (auto* x : {&a.q_a, &a.q_b, &a.q, &a.kv_a, &a.kv_b, &a.k, &a.v, &a.qkv, &a.o}) fn(*x);
  auto mlp = [&](auto& m) {
    for (auto* x : {&m.gate, &m.up, &m.gate_up, &m.down}) fn(*x);
  };
  if (!l.moe) return mlp(l.mlp);
  for (auto& e : l.experts.experts) mlp(e);
  if (l.experts.shared) mlp(*l.experts.shared);
}

}  // namespace

std::vector<std::string> Model::linear_names() const {
  std::vector<std::string> out;
  for (const auto& l : layers_)
    visit_linears(l, [&](const Linear& x) {
      if (!x.name().empty()) out.push_back(x.name());
    });
  return out;
}

Linear* Model::linear(size_t li, const std::string& name) {
  Linear* found = nullptr;
  visit_linears(layers_[li], [&](Linear& x) {
    if (x.name() == name) found = &x;
  });
  return found;
}

double Model::layer_macs(const Layer& l) const {
  const ModelConfig& c = cfg_;
  auto lin = [](const Linear& x) { return x.name().empty() ? 0.0 : double(x.in()) * double(x.out()); };
  auto mlp = [&](const Mlp& m) { return lin(m.gate) + lin(m.up) + lin(m.gate_up) + lin(m.down); };
  const auto& a = l.attn;
  double macs = 0;
  for (const Linear* x : {&a.q_a, &a.q_b, &a.q, &a.kv_a, &a.kv_b, &a.k, &a.v, &a.qkv, &a.o}) macs += lin(*x);
  if (!l.moe) return macs + mlp(l.mlp);
  double e = 0;
  for (const auto& x : l.experts.experts) e += mlp(x);
  macs += e * c.experts_per_tok / std::max(1, c.n_routed_experts);
  macs += double(c.n_routed_experts) * c.hidden;  // router
  if (l.experts.shared) macs += mlp(*l.experts.shared);
  return macs;
}

double Model::forward_flops(int64_t n) const {
  const ModelConfig& c = cfg_;
  double macs = double(c.vocab) * double(c.hidden);  // lm_head
  for (double m : layer_macs_) macs += m;
  const double pairs = double(n) * double(n + 1) / 2;
  const double dv = c.mla ? c.v_head_dim : c.head_dim;
  const double attn = double(c.layers) * c.heads * pairs * (c.qk_head_dim() + dv);
  return 2.0 * (macs * double(n) + attn);
}

}  // namespace st::model
