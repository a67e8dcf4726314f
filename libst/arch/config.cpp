// Parsing config.json into ModelConfig, with HF transformers' defaults for each family, and the
// checks that keep its numbers meaningful.
#include "libst/arch/config.hpp"

#include <cmath>
#include <cstdio>

#include "libst/format/checkpoint.hpp"

namespace st::model {

namespace {

using nlohmann::json;

const std::pair<const char*, Family> kFamilies[] = {
    {"llama", Family::llama},     {"mistral", Family::mistral},         {"qwen2", Family::qwen2},
    {"qwen3", Family::qwen3},     {"deepseek_v2", Family::deepseek_v2}, {"deepseek_v3", Family::deepseek_v3},
};

Error config_error(const std::string& msg) { return make_error(Errc::format, msg, "config.json"); }

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

// Sizes every family has.
Status parse_shape(const json& j, ModelConfig& c) {
  ST_ASSIGN(c.hidden, positive_count(j, "hidden_size", std::nullopt));
  ST_ASSIGN(c.intermediate, positive_count(j, "intermediate_size", std::nullopt));
  ST_ASSIGN(c.layers, positive_count(j, "num_hidden_layers", std::nullopt));
  ST_ASSIGN(c.heads, positive_count(j, "num_attention_heads", std::nullopt));
  ST_ASSIGN(c.kv_heads, positive_count(j, "num_key_value_heads", c.heads));
  ST_ASSIGN(c.vocab, positive_count(j, "vocab_size", std::nullopt));
  ST_ASSIGN(c.max_positions, positive_count(j, "max_position_embeddings", 2048));
  ST_ASSIGN(c.rms_eps, num(j, "rms_norm_eps", 1e-6));
  if (!std::isfinite(c.rms_eps) || c.rms_eps < 0) return config_error("'rms_norm_eps' is " + shown(c.rms_eps) + ", not a finite number >= 0");
  if (c.layers > 100000) return config_error("'num_hidden_layers' is implausible (" + std::to_string(c.layers) + ")");
  if (c.heads % c.kv_heads != 0)
    return config_error("num_attention_heads must be a positive multiple of num_key_value_heads");
  ST_ASSIGN(c.head_dim, positive_count(j, "head_dim", c.hidden / c.heads));
  c.tie_embeddings = flag(j, "tie_word_embeddings", false);
  c.attention_bias = flag(j, "attention_bias", false);
  c.mlp_bias = flag(j, "mlp_bias", false);
  c.hidden_act = str(j, "hidden_act", "silu");
  if (c.family == Family::mistral || flag(j, "use_sliding_window", false)) {
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
  bool known = false;
  for (const auto& [name, fam] : kFamilies)
    if (c.model_type == name) c.family = fam, known = true;
  if (!known)
    return make_error(Errc::unsupported,
                      "unsupported model_type '" + c.model_type + "' (supported: " + supported_families() + ")",
                      "config.json");
  ST_CHECK(parse_shape(j, c));
  ST_CHECK(parse_rope(j, c.max_positions, c.rope));
  if (c.family == Family::deepseek_v2 || c.family == Family::deepseek_v3) {
    ST_CHECK(parse_mla(j, c));
    ST_CHECK(parse_moe(j, c));
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
