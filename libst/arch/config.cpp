// Parsing config.json into ModelConfig, with HF transformers' defaults for each family, and the
// checks that keep its numbers meaningful.
#include "libst/arch/config.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "libst/format/checkpoint.hpp"

namespace st::model {

namespace {

using nlohmann::json;

Error config_error(const std::string& msg) { return make_error(Errc::format, msg, "config.json"); }
// A key whose value selects a variant the code does not run.
Error unsupported_key(const std::string& key, const std::string& why) {
  return make_error(Errc::unsupported, "'" + key + "' " + why, "config.json");
}

std::string shown(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// A numeric field; absent or null gives `def` (nullopt: required).
Result<double> num(const json& j, const char* key, std::optional<double> def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (def) return *def;
    return config_error(std::string("missing key '") + key + "'");
  }
  if (!it->is_number()) return config_error(std::string("key '") + key + "' is not a number");
  return it->get<double>();
}

// A numeric field that must be finite and above `floor` (exclusive).
Result<double> above(const json& j, const char* key, std::optional<double> def, double floor) {
  ST_ASSIGN(const double v, num(j, key, def));
  if (!std::isfinite(v) || v <= floor)
    return config_error(std::string("'") + key + "' is " + shown(v) + ", not a finite number above " + shown(floor));
  return v;
}

Result<int> integer(const json& j, const char* key, std::optional<int> def) {
  ST_ASSIGN(double v, num(j, key, def ? std::optional<double>(*def) : std::nullopt));
  if (v < 0 || v != std::floor(v) || v > 1e9) return config_error(std::string("key '") + key + "' is not a valid count");
  return int(v);
}

Result<int> positive_count(const json& j, const char* key, std::optional<int> def) {
  ST_ASSIGN(const int v, integer(j, key, def));
  if (v == 0) return config_error(std::string("'") + key + "' is 0: it must be positive");
  return v;
}

bool flag(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return (it == j.end() || !it->is_boolean()) ? def : it->get<bool>();
}

std::string str(const json& j, const char* key, const std::string& def) {
  auto it = j.find(key);
  return (it == j.end() || !it->is_string()) ? def : it->get<std::string>();
}

std::optional<double> optional_num(const json& p, const char* key) {
  auto it = p.find(key);
  if (it == p.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

// transformers 5: rope_parameters {rope_type, rope_theta, ...}; older: rope_theta + rope_scaling.
Status parse_rope(const json& j, int max_positions, RopeConfig& r) {
  json p = json::object();
  if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) p = *it;
  else if (auto it2 = j.find("rope_scaling"); it2 != j.end() && it2->is_object()) p = *it2;
  ST_ASSIGN(r.theta, above(p.contains("rope_theta") ? p : j, "rope_theta", 10000.0, 1.0));
  r.type = str(p, "rope_type", str(p, "type", "default"));
  if (r.type != "linear" && r.type != "llama3" && r.type != "yarn") return {};  // default, or refused by runnable()
  ST_ASSIGN(r.factor, above(p, "factor", std::nullopt, 0.0));
  ST_ASSIGN(r.original_max_position_embeddings, above(p, "original_max_position_embeddings", double(max_positions), 0.0));
  if (r.type == "llama3") {
    ST_ASSIGN(r.low_freq_factor, above(p, "low_freq_factor", 1.0, 0.0));
    ST_ASSIGN(r.high_freq_factor, above(p, "high_freq_factor", 4.0, r.low_freq_factor));
  }
  if (r.type == "yarn") {
    ST_ASSIGN(r.beta_fast, above(p, "beta_fast", 32.0, 0.0));
    ST_ASSIGN(r.beta_slow, above(p, "beta_slow", 1.0, 0.0));
    r.attention_factor = optional_num(p, "attention_factor");
    r.mscale = optional_num(p, "mscale");
    r.mscale_all_dim = optional_num(p, "mscale_all_dim");
    if (r.attention_factor) ST_CHECK(above(p, "attention_factor", std::nullopt, 0.0));
    for (const char* k : {"mscale", "mscale_all_dim"})
      if (const auto v = optional_num(p, k); v && !std::isfinite(*v)) return config_error(std::string("'") + k + "' is not finite");
    r.truncate = flag(p, "truncate", true);
  }
  return {};
}

// The keys holding the sizes every family has (ChatGLM's remote-code config names them its own way).
struct ShapeKeys {
  const char* layers = "num_hidden_layers";
  const char* kv_heads = "num_key_value_heads";
  const char* head_dim = "head_dim";
  const char* intermediate = "intermediate_size";
  const char* vocab = "vocab_size";
  const char* max_positions = "max_position_embeddings";
  const char* eps = "rms_norm_eps";
};

ShapeKeys shape_keys(Family f) {
  ShapeKeys k;
  if (f == Family::chatglm) {
    k.layers = "num_layers", k.kv_heads = "multi_query_group_num", k.head_dim = "kv_channels";
    k.intermediate = "ffn_hidden_size", k.vocab = "padded_vocab_size", k.max_positions = "seq_length";
    k.eps = "layernorm_epsilon";
  }
  return k;
}

// Sizes every family has.
Status parse_shape(const json& j, ModelConfig& c) {
  const ShapeKeys k = shape_keys(c.family);
  ST_ASSIGN(c.hidden, positive_count(j, "hidden_size", std::nullopt));
  ST_ASSIGN(c.intermediate, positive_count(j, k.intermediate, std::nullopt));
  ST_ASSIGN(c.layers, positive_count(j, k.layers, std::nullopt));
  ST_ASSIGN(c.heads, positive_count(j, "num_attention_heads", std::nullopt));
  ST_ASSIGN(c.kv_heads, positive_count(j, k.kv_heads, c.family == Family::chatglm ? 1 : c.heads));
  ST_ASSIGN(c.vocab, positive_count(j, k.vocab, std::nullopt));
  ST_ASSIGN(c.max_positions, positive_count(j, k.max_positions, 2048));
  ST_ASSIGN(c.rms_eps, num(j, k.eps, c.family == Family::chatglm ? 1e-5 : 1e-6));
  if (!std::isfinite(c.rms_eps) || c.rms_eps < 0)
    return config_error(std::string("'") + k.eps + "' is " + shown(c.rms_eps) + ", not a finite number >= 0");
  if (c.layers > 100000) return config_error(std::string("'") + k.layers + "' is implausible (" + std::to_string(c.layers) + ")");
  if (c.heads % c.kv_heads != 0)
    return config_error(std::string("num_attention_heads must be a positive multiple of ") + k.kv_heads);
  ST_ASSIGN(c.head_dim, positive_count(j, k.head_dim, c.hidden / c.heads));
  c.tie_embeddings = flag(j, "tie_word_embeddings", false);
  c.attention_bias = flag(j, "attention_bias", false);
  c.mlp_bias = flag(j, "mlp_bias", false);
  c.hidden_act = str(j, "hidden_act", "silu");
  if (c.family == Family::mistral || c.family == Family::mixtral || flag(j, "use_sliding_window", false)) {
    ST_ASSIGN(c.sliding_window, integer(j, "sliding_window", 0));
  }
  return {};
}

// DeepSeek's multi-head latent attention.
Status parse_mla(const json& j, ModelConfig& c) {
  c.mla = true;
  ST_ASSIGN(c.q_lora_rank, integer(j, "q_lora_rank", 0));
  ST_ASSIGN(c.kv_lora_rank, positive_count(j, "kv_lora_rank", std::nullopt));
  ST_ASSIGN(c.qk_nope_dim, integer(j, "qk_nope_head_dim", std::nullopt));
  ST_ASSIGN(c.qk_rope_dim, positive_count(j, "qk_rope_head_dim", std::nullopt));
  ST_ASSIGN(c.v_head_dim, positive_count(j, "v_head_dim", std::nullopt));
  if (c.qk_rope_dim % 2) return config_error("qk_rope_head_dim must be even");
  // HF's DeepSeek-V2 applies RoPE to interleaved pairs (complex multiply); V3 when rope_interleave.
  c.rope_interleave = c.family == Family::deepseek_v3 ? flag(j, "rope_interleave", true) : true;
  c.kv_heads = c.heads;
  return {};
}

// DeepSeek's mixture of experts.
Status parse_moe(const json& j, ModelConfig& c) {
  const bool v3 = c.family == Family::deepseek_v3;
  ST_ASSIGN(c.n_routed_experts, integer(j, "n_routed_experts", 0));
  ST_ASSIGN(c.n_shared_experts, integer(j, "n_shared_experts", 0));
  ST_ASSIGN(c.experts_per_tok, integer(j, "num_experts_per_tok", 0));
  ST_ASSIGN(c.moe_intermediate, integer(j, "moe_intermediate_size", 0));
  ST_ASSIGN(c.first_k_dense_replace, integer(j, "first_k_dense_replace", 0));
  ST_ASSIGN(c.moe_layer_freq, integer(j, "moe_layer_freq", 1));
  ST_ASSIGN(c.n_group, integer(j, "n_group", 1));
  ST_ASSIGN(c.topk_group, integer(j, "topk_group", 1));
  c.norm_topk_prob = flag(j, "norm_topk_prob", v3);
  ST_ASSIGN(c.routed_scaling_factor, above(j, "routed_scaling_factor", 1.0, 0.0));
  c.scoring_func = str(j, "scoring_func", v3 ? "sigmoid" : "softmax");
  c.topk_method = str(j, "topk_method", v3 ? "noaux_tc" : "greedy");
  if (c.n_routed_experts > 100000) return config_error("'n_routed_experts' is implausible (" + std::to_string(c.n_routed_experts) + ")");
  if (c.n_routed_experts == 0) return {};
  if (c.moe_intermediate == 0) return config_error("'moe_intermediate_size' is 0: routed experts need it");
  if (c.experts_per_tok == 0 || c.experts_per_tok > c.n_routed_experts)
    return config_error("num_experts_per_tok must be in 1..n_routed_experts");
  if (c.n_group == 0 || c.n_routed_experts % c.n_group || c.topk_group > c.n_group)
    return config_error("n_group must divide n_routed_experts and topk_group must not exceed n_group");
  return {};
}

// Qwen3-MoE's experts: softmax top-k over mlp.gate, MoE layers picked by decoder_sparse_step and
// mlp_only_layers (transformers' defaults where a key is absent).
Status parse_qwen3_moe(const json& j, ModelConfig& c) {
  if (flag(j, "use_sliding_window", false))
    return unsupported_key("use_sliding_window", "is true: per-layer sliding windows are not supported for qwen3_moe");
  ST_ASSIGN(c.n_routed_experts, positive_count(j, "num_experts", 128));
  ST_ASSIGN(c.experts_per_tok, positive_count(j, "num_experts_per_tok", 8));
  ST_ASSIGN(c.moe_intermediate, positive_count(j, "moe_intermediate_size", 768));
  ST_ASSIGN(c.decoder_sparse_step, positive_count(j, "decoder_sparse_step", 1));
  c.norm_topk_prob = flag(j, "norm_topk_prob", false);
  if (auto it = j.find("mlp_only_layers"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return config_error("'mlp_only_layers' is not a list of layer indices");
    for (const auto& v : *it) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= c.layers)
        return config_error("'mlp_only_layers' holds " + v.dump() + ", not a layer index below " + std::to_string(c.layers));
      c.mlp_only_layers.push_back(v.get<int>());
    }
  }
  return {};
}

// Mixtral's experts: softmax top-k over block_sparse_moe.gate, weights renormalised, every layer.
Status parse_mixtral(const json& j, ModelConfig& c) {
  ST_ASSIGN(c.n_routed_experts, positive_count(j, "num_local_experts", 8));
  ST_ASSIGN(c.experts_per_tok, positive_count(j, "num_experts_per_tok", 2));
  c.moe_intermediate = c.intermediate;
  c.norm_topk_prob = true;
  return {};
}

// The MoE fields the DeepSeek parser does not set, for the softmax-routed families.
Status softmax_routing(ModelConfig& c) {
  c.scoring_func = "softmax";
  c.topk_method = "greedy";
  if (c.n_routed_experts > 100000) return config_error("the expert count is implausible (" + std::to_string(c.n_routed_experts) + ")");
  if (c.experts_per_tok > c.n_routed_experts) return config_error("num_experts_per_tok exceeds the number of experts");
  return {};
}

// Partial RoPE on interleaved pairs: glm and glm4 (partial_rotary_factor, in rope_parameters in
// transformers 5), chatglm (half of kv_channels, theta scaled by rope_ratio).
Status parse_partial_rope(const json& j, ModelConfig& c) {
  c.rope_interleave = c.family == Family::glm || c.family == Family::glm4 || c.family == Family::chatglm;
  double factor = 1.0;
  if (c.family == Family::chatglm) {
    ST_ASSIGN(const double ratio, above(j, "rope_ratio", 1.0, 0.0));
    c.rope.theta = 10000.0 * ratio;
    factor = 0.5;
  } else {
    const json* p = &j;
    if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object() && it->contains("partial_rotary_factor")) p = &*it;
    ST_ASSIGN(factor, above(*p, "partial_rotary_factor", c.rope_interleave ? 0.5 : 1.0, 0.0));
    if (!c.rope_interleave && factor != 1.0)
      return unsupported_key("partial_rotary_factor", "is " + shown(factor) + ": partial RoPE is supported for glm and glm4 only");
  }
  if (factor > 1.0) return config_error("'partial_rotary_factor' is " + shown(factor) + ", above 1");
  c.rotary_dim = int(double(c.head_dim) * factor);
  if (c.rotary_dim < 2 || c.rotary_dim % 2)
    return config_error("the rotary dimension (head_dim x " + shown(factor) + " = " + std::to_string(c.rotary_dim) +
                        ") must be even and at least 2");
  return {};
}

// ChatGLM2/3 and GLM-4-9B-chat (remote code): the variants other than the one it ships are refused.
Status parse_chatglm(const json& j, ModelConfig& c) {
  if (j.contains("position_encoding_2d"))
    return unsupported_key("position_encoding_2d", "is set: ChatGLM-6B (v1) is not supported, ChatGLM2/3 are");
  if (!flag(j, "multi_query_attention", false))
    return unsupported_key("multi_query_attention", "is not true: query_key_value's per-head q/k/v layout is not supported");
  if (!flag(j, "rmsnorm", true)) return unsupported_key("rmsnorm", "is false: LayerNorm ChatGLM models are not supported");
  if (flag(j, "apply_residual_connection_post_layernorm", false))
    return unsupported_key("apply_residual_connection_post_layernorm", "is true: not supported");
  if (!flag(j, "post_layer_norm", true)) return unsupported_key("post_layer_norm", "is false: not supported");
  if (auto it = j.find("pre_seq_len"); it != j.end() && !it->is_null())
    return unsupported_key("pre_seq_len", "is set: prefix-tuned ChatGLM models are not supported");
  const bool linear_bias = flag(j, "add_bias_linear", false);
  c.attention_bias = c.mlp_bias = linear_bias;
  c.qkv_bias = linear_bias || flag(j, "add_qkv_bias", false);
  return {};
}

// Baichuan / Baichuan2 (remote code): W_pack holds q, k and v of hidden_size rows each.
Status parse_baichuan(const json& j, ModelConfig& c) {
  if (c.hidden % c.heads) return config_error("hidden_size must be a multiple of num_attention_heads");
  if (c.kv_heads != c.heads || c.head_dim * c.heads != c.hidden)
    return unsupported_key(c.kv_heads != c.heads ? "num_key_value_heads" : "head_dim",
                           "differs from what W_pack holds (hidden_size rows each of q, k and v)");
  // The 13B (40 layers, as MindIE's router tells them apart) has ALiBi and only model_max_length;
  // the 7B RoPE and max_position_embeddings. Anything else is a variant we cannot place.
  const bool positions = j.contains("max_position_embeddings");
  c.alibi = c.layers == 40;
  if (c.alibi && positions)
    return unsupported_key("max_position_embeddings", "is set in a 40-layer Baichuan (the 13B, which has ALiBi and no RoPE): "
                                                      "cannot tell its position encoding");
  if (!c.alibi && !positions)
    return unsupported_key("max_position_embeddings", "is missing in a " + std::to_string(c.layers) +
                                                          "-layer Baichuan (RoPE; only the 40-layer 13B has ALiBi): "
                                                          "cannot tell its position encoding");
  if (c.alibi) {
    ST_ASSIGN(c.max_positions, positive_count(j, "model_max_length", 4096));
  }
  c.norm_head = c.vocab == 125696;
  return {};
}

double yarn_get_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

bool ModelConfig::is_moe_layer(int layer) const {
  if (n_routed_experts == 0) return false;
  switch (family) {
    case Family::mixtral: return true;
    case Family::qwen3_moe:
      return (layer + 1) % decoder_sparse_step == 0 &&
             std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) == mlp_only_layers.end();
    default: return layer >= first_k_dense_replace && moe_layer_freq > 0 && layer % moe_layer_freq == 0;
  }
}

double ModelConfig::attention_scale() const {
  double s = 1.0 / std::sqrt(double(qk_head_dim()));
  if (mla && rope.type != "default" && rope.mscale_all_dim && *rope.mscale_all_dim != 0) {
    const double m = yarn_get_mscale(rope.factor, *rope.mscale_all_dim);
    s *= m * m;
  }
  return s;
}

Status ModelConfig::runnable() const {
  auto refuse = [](const std::string& what) { return make_error(Errc::unsupported, what); };
  if (hidden_act != "silu") return refuse("hidden_act '" + hidden_act + "' is not supported (silu)");
  if (rope.type != "default" && rope.type != "linear" && rope.type != "llama3" && rope.type != "yarn")
    return refuse("rope type '" + rope.type + "' is not supported (default, linear, llama3, yarn)");
  if (n_routed_experts > 0 && scoring_func != "sigmoid" && scoring_func != "softmax")
    return refuse("scoring_func '" + scoring_func + "' is not supported (sigmoid, softmax)");
  return {};
}

Result<ModelConfig> parse_config(const json& j) {
  if (!j.is_object() || j.empty())
    return make_error(Errc::format, "no config.json: cannot tell the model's architecture", "config.json");
  ModelConfig c;
  c.model_type = str(j, "model_type", "");
  if (!family_of(c.model_type, c.family))
    return make_error(Errc::unsupported,
                      "unsupported model_type '" + c.model_type + "' (supported: " + supported_families() + ")",
                      "config.json");
  ST_CHECK(parse_shape(j, c));
  ST_CHECK(parse_rope(j, c.max_positions, c.rope));
  ST_CHECK(parse_partial_rope(j, c));
  switch (c.family) {
    case Family::qwen2: c.qkv_bias = true; break;
    case Family::glm:
    case Family::glm4:
      c.qkv_bias = flag(j, "attention_bias", true);
      c.attention_bias = false;  // o_proj has none
      c.sandwich_norms = c.family == Family::glm4;
      break;
    case Family::chatglm: ST_CHECK(parse_chatglm(j, c)); break;
    case Family::baichuan: ST_CHECK(parse_baichuan(j, c)); break;
    case Family::qwen3_moe:
      ST_CHECK(parse_qwen3_moe(j, c));
      ST_CHECK(softmax_routing(c));
      break;
    case Family::mixtral:
      ST_CHECK(parse_mixtral(j, c));
      ST_CHECK(softmax_routing(c));
      break;
    case Family::deepseek_v2:
    case Family::deepseek_v3:
      ST_CHECK(parse_mla(j, c));
      ST_CHECK(parse_moe(j, c));
      break;
    default: break;
  }
  return c;
}

std::string config_origin(const Checkpoint& ck) {
  const bool dir = ck.layout() != Layout::stream && ck.layout() != Layout::file;
  return dir ? ck.path() + "/config.json" : ck.path();
}

Result<ModelConfig> read_config(const Checkpoint& ck) {
  auto c = parse_config(ck.config());
  if (!c && c.error().file == "config.json") c.error().file = config_origin(ck);
  return c;
}

}  // namespace st::model
