// config.json, read once: the one reader of the keys libst uses (model shape, attention, RoPE, MLA,
// MoE) for the decoder-only families it knows (family.hpp). TpConfig (tensor-parallel rules),
// Architecture (the linears) and the forward pass all start from this ModelConfig.
//
// Family keys mapped onto the common fields:
//   chatglm   num_layers, kv_channels (head_dim), multi_query_group_num (KV heads), ffn_hidden_size,
//             padded_vocab_size, seq_length, layernorm_epsilon; RoPE theta 10000 * rope_ratio on
//             the first kv_channels / 2 dimensions of each head, interleaved pairs
//   glm, glm4 RoPE on the first head_dim * partial_rotary_factor (default 0.5) dimensions,
//             interleaved pairs; attention_bias (default true) on q/k/v only
//   baichuan  model_max_length when there is no max_position_embeddings; 40 layers (the 13B) means
//             ALiBi instead of RoPE, as MindIE's router decides; vocab_size 125696 (Baichuan2)
//             means NormHead (lm_head rows L2-normalised), as MindIE's lm_head loader decides
//   qwen3_moe num_experts, num_experts_per_tok, moe_intermediate_size, norm_topk_prob,
//             decoder_sparse_step, mlp_only_layers (softmax routing)
//   mixtral   num_local_experts, num_experts_per_tok; experts intermediate_size wide; softmax
//             routing renormalised over the chosen experts
// A variant the code does not run (ChatGLM without multi-query attention or with LayerNorm,
// prefix tuning, ChatGLM-6B v1's 2-D positions, a partial rotary factor outside glm/glm4, ...) is
// Errc::unsupported naming the key.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/arch/family.hpp"
#include "libst/core/error.hpp"

namespace st {
class Checkpoint;
}

namespace st::model {

// RoPE parameters (HF transformers' rope_parameters / legacy rope_scaling + rope_theta).
struct RopeConfig {
  std::string type = "default";  // default | linear | llama3 | yarn
  double theta = 10000.0;
  double factor = 1.0;
  // llama3
  double low_freq_factor = 1.0, high_freq_factor = 4.0;
  double original_max_position_embeddings = 0;  // 0: use max_position_embeddings
  // yarn
  std::optional<double> attention_factor, mscale, mscale_all_dim;
  double beta_fast = 32, beta_slow = 1;
  bool truncate = true;
};

struct ModelConfig {
  Family family = Family::llama;
  std::string model_type;
  std::string hidden_act = "silu";
  bool attention_bias = false, mlp_bias = false;  // explicit biases on every attention / MLP linear
  bool qkv_bias = false;  // biases on q/k/v (or the fused q/k/v) only: qwen2, glm, chatglm
  int hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int vocab = 0;
  int max_positions = 0;
  double rms_eps = 1e-6;
  bool tie_embeddings = false;
  int sliding_window = 0;  // 0: none
  RopeConfig rope;
  int rotary_dim = 0;             // RoPE dimensions at the start of each head (head_dim unless partial)
  bool alibi = false;             // ALiBi biases instead of RoPE (Baichuan 13B)
  bool norm_head = false;         // lm_head rows L2-normalised before use (Baichuan2's NormHead)
  bool sandwich_norms = false;    // glm4: post_self_attn_layernorm and post_mlp_layernorm on the block outputs

  // MLA (deepseek_v2 / deepseek_v3)
  bool mla = false;
  int q_lora_rank = 0;  // 0: plain q_proj
  int kv_lora_rank = 0, qk_nope_dim = 0, qk_rope_dim = 0, v_head_dim = 0;
  bool rope_interleave = false;  // RoPE on interleaved pairs (MLA, glm, glm4, chatglm)

  // MoE (deepseek_v2 / deepseek_v3, qwen3_moe, mixtral)
  int n_routed_experts = 0, n_shared_experts = 0, experts_per_tok = 0;
  int moe_intermediate = 0, first_k_dense_replace = 0, moe_layer_freq = 1;
  int n_group = 1, topk_group = 1;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  std::string scoring_func = "sigmoid";  // v3: sigmoid; v2: softmax
  std::string topk_method = "noaux_tc";   // v3: noaux_tc; v2: greedy | group_limited_greedy
  int decoder_sparse_step = 1;            // qwen3_moe: MoE in layers i with (i + 1) % step == 0 ...
  std::vector<int> mlp_only_layers;       // ... except these

  int qk_head_dim() const { return mla ? qk_nope_dim + qk_rope_dim : head_dim; }
  int rope_dim() const { return mla ? qk_rope_dim : rotary_dim; }
  bool is_moe_layer(int layer) const;
  const TensorNames& names() const { return tensor_names(family); }
  // Attention softmax scale (with the yarn mscale correction DeepSeek applies).
  double attention_scale() const;
  // Whether the forward pass runs this variant (hidden_act silu; RoPE default, linear, llama3 or
  // yarn; MoE scoring sigmoid or softmax): Errc::unsupported naming the key otherwise (no file:
  // the caller adds config_origin()).
  Status runnable() const;
};

// Parses config.json (an object; "no config.json" when empty). Errors name the key: a missing
// required count, a model_type outside the known families (Errc::unsupported), and values that
// make the arithmetic meaningless (Errc::format): non-positive sizes, heads that do not divide,
// a rope_theta that is not a finite number above 1, RoPE scaling factors that are not finite and
// positive (llama3: high_freq_factor above low_freq_factor), a negative or non-finite
// rms_norm_eps, an implausible layer or expert count.
Result<ModelConfig> parse_config(const nlohmann::json& j);
// The same for an open checkpoint's config.json; errors name where it came from: DIR/config.json,
// or the file or stream whose __metadata__ carries it.
Result<ModelConfig> read_config(const Checkpoint& ck);
// That place: "DIR/config.json", or the checkpoint file or stream carrying it.
std::string config_origin(const Checkpoint& ck);

}  // namespace st::model
