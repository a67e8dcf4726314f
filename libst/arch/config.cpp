// Parsing config.json into ModelConfig, with HF transformers' defaults for each family.
#include "libst/arch/config.hpp"

#include <cmath>

namespace st::model {

namespace {

using nlohmann::json;

const std::pair<const char*, Family> kFamilies[] = {
    {"llama", Family::llama},     {"mistral", Family::mistral},         {"qwen2", Family::qwen2},
    {"qwen3", Family::qwen3},     {"deepseek_v2", Family::deepseek_v2}, {"deepseek_v3", Family::deepseek_v3},
};

Error config_error(const std::string& msg) { return make_error(Errc::format, msg, "config.json"); }

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

Result<int> integer(const json& j, const char* key, std::optional<int> def) {
  ST_ASSIGN(double v, num(j, key, def ? std::optional<double>(*def) : std::nullopt));
  if (v < 0 || v != std::floor(v) || v > 1e9) return config_error(std::string("key '") + key + "' is not a valid count");
  return int(v);
}

bool flag(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  return (it == j.end() || !it->is_boolean()) ? def : it->get<bool>();
}

std::string str(const json& j, const char* key, const std::string& def) {
  auto it = j.find(key);
  return (it == j.end() || !it->is_string()) ? def : it->get<std::string>();
}

Status parse_rope(const json& j, int max_positions, RopeConfig& r) {
  // transformers 5: rope_parameters {rope_type, rope_theta, ...}; older: rope_theta + rope_scaling.
  json p = json::object();
  if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) p = *it;
  else if (auto it2 = j.find("rope_scaling"); it2 != j.end() && it2->is_object()) p = *it2;
  ST_ASSIGN(r.theta, num(p.contains("rope_theta") ? p : j, "rope_theta", 10000.0));
  r.type = str(p, "rope_type", str(p, "type", "default"));
  if (r.type == "default") return {};
  if (r.type != "linear" && r.type != "llama3" && r.type != "yarn")
    return make_error(Errc::unsupported, "rope type '" + r.type + "' is not supported (default, linear, llama3, yarn)",
                      "config.json");
  ST_ASSIGN(r.factor, num(p, "factor", std::nullopt));
  ST_ASSIGN(r.low_freq_factor, num(p, "low_freq_factor", 1.0));
  ST_ASSIGN(r.high_freq_factor, num(p, "high_freq_factor", 4.0));
  ST_ASSIGN(r.original_max_position_embeddings, num(p, "original_max_position_embeddings", double(max_positions)));
  if (p.contains("attention_factor") && p["attention_factor"].is_number()) r.attention_factor = p["attention_factor"].get<double>();
  if (p.contains("mscale") && p["mscale"].is_number()) r.mscale = p["mscale"].get<double>();
  if (p.contains("mscale_all_dim") && p["mscale_all_dim"].is_number()) r.mscale_all_dim = p["mscale_all_dim"].get<double>();
  ST_ASSIGN(r.beta_fast, num(p, "beta_fast", 32.0));
  ST_ASSIGN(r.beta_slow, num(p, "beta_slow", 1.0));
  r.truncate = flag(p, "truncate", true);
  return {};
}

double yarn_get_mscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

const char* family_name(Family f) {
  for (const auto& [name, fam] : kFamilies)
    if (fam == f) return name;
  return "?";
}

std::string supported_families() {
  std::string s;
  for (const auto& [name, fam] : kFamilies) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

double ModelConfig::attention_scale() const {
  double s = 1.0 / std::sqrt(double(qk_head_dim()));
  if (mla && rope.type != "default" && rope.mscale_all_dim && *rope.mscale_all_dim != 0) {
    const double m = yarn_get_mscale(rope.factor, *rope.mscale_all_dim);
    s *= m * m;
  }
  return s;
}

Result<ModelConfig> parse_config(const json& j) {
  if (!j.is_object() || j.empty()) return config_error("missing or empty config.json");
  ModelConfig c;
  c.model_type = str(j, "model_type", "");
  bool known = false;
  for (const auto& [name, fam] : kFamilies)
    if (c.model_type == name) c.family = fam, known = true;
  if (!known)
    return make_error(Errc::unsupported,
                      "unsupported architecture '" + c.model_type + "' (supported: " + supported_families() + ")",
                      "config.json");
  ST_ASSIGN(c.hidden, integer(j, "hidden_size", std::nullopt));
  ST_ASSIGN(c.intermediate, integer(j, "intermediate_size", std::nullopt));
  ST_ASSIGN(c.layers, integer(j, "num_hidden_layers", std::nullopt));
  ST_ASSIGN(c.heads, integer(j, "num_attention_heads", std::nullopt));
  ST_ASSIGN(c.kv_heads, integer(j, "num_key_value_heads", c.heads));
  ST_ASSIGN(c.vocab, integer(j, "vocab_size", std::nullopt));
  ST_ASSIGN(c.max_positions, integer(j, "max_position_embeddings", 2048));
  ST_ASSIGN(c.rms_eps, num(j, "rms_norm_eps", 1e-6));
  if (c.heads == 0 || c.kv_heads == 0 || c.heads % c.kv_heads != 0)
    return config_error("num_attention_heads must be a positive multiple of num_key_value_heads");
  ST_ASSIGN(c.head_dim, integer(j, "head_dim", c.hidden / c.heads));
  c.tie_embeddings = flag(j, "tie_word_embeddings", false);
  if (c.family == Family::mistral || flag(j, "use_sliding_window", false)) {
    ST_ASSIGN(c.sliding_window, integer(j, "sliding_window", 0));
  }
  ST_CHECK(parse_rope(j, c.max_positions, c.rope));

  if (c.family == Family::deepseek_v2 || c.family == Family::deepseek_v3) {
    const bool v3 = c.family == Family::deepseek_v3;
    c.mla = true;
    ST_ASSIGN(c.q_lora_rank, integer(j, "q_lora_rank", 0));
    ST_ASSIGN(c.kv_lora_rank, integer(j, "kv_lora_rank", std::nullopt));
    ST_ASSIGN(c.qk_nope_dim, integer(j, "qk_nope_head_dim", std::nullopt));
    ST_ASSIGN(c.qk_rope_dim, integer(j, "qk_rope_head_dim", std::nullopt));
    ST_ASSIGN(c.v_head_dim, integer(j, "v_head_dim", std::nullopt));
    if (c.qk_rope_dim % 2) return config_error("qk_rope_head_dim must be even");
    // HF's DeepSeek-V2 applies RoPE to interleaved pairs (complex multiply); V3 when rope_interleave.
    c.rope_interleave = v3 ? flag(j, "rope_interleave", true) : true;
    c.kv_heads = c.heads;
    ST_ASSIGN(c.n_routed_experts, integer(j, "n_routed_experts", 0));
    ST_ASSIGN(c.n_shared_experts, integer(j, "n_shared_experts", 0));
    ST_ASSIGN(c.experts_per_tok, integer(j, "num_experts_per_tok", 0));
    ST_ASSIGN(c.moe_intermediate, integer(j, "moe_intermediate_size", 0));
    ST_ASSIGN(c.first_k_dense_replace, integer(j, "first_k_dense_replace", 0));
    ST_ASSIGN(c.moe_layer_freq, integer(j, "moe_layer_freq", 1));
    ST_ASSIGN(c.n_group, integer(j, "n_group", 1));
    ST_ASSIGN(c.topk_group, integer(j, "topk_group", 1));
    c.norm_topk_prob = flag(j, "norm_topk_prob", v3);
    ST_ASSIGN(c.routed_scaling_factor, num(j, "routed_scaling_factor", 1.0));
    c.scoring_func = str(j, "scoring_func", v3 ? "sigmoid" : "softmax");
    c.topk_method = str(j, "topk_method", v3 ? "noaux_tc" : "greedy");
    if (c.n_routed_experts > 0) {
      if (c.experts_per_tok == 0 || c.experts_per_tok > c.n_routed_experts)
        return config_error("num_experts_per_tok must be in 1..n_routed_experts");
      if (c.n_group == 0 || c.n_routed_experts % c.n_group || c.topk_group > c.n_group)
        return config_error("n_group must divide n_routed_experts and topk_group must not exceed n_group");
      if (c.scoring_func != "sigmoid" && c.scoring_func != "softmax")
        return make_error(Errc::unsupported, "scoring_func '" + c.scoring_func + "' is not supported", "config.json");
    }
  }
  const std::string act = str(j, "hidden_act", "silu");
  if (act != "silu")
    return make_error(Errc::unsupported, "hidden_act '" + act + "' is not supported (silu)", "config.json");
  if (c.hidden <= 0 || c.layers <= 0 || c.vocab <= 0 || c.head_dim <= 0)
    return config_error("hidden_size, num_hidden_layers, vocab_size and head_dim must be positive");
  return c;
}

}  // namespace st::model
