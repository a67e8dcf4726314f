// Model knowledge: which tensors of a decoder-only checkpoint are linears, how they fuse and
// how MindIE's loader splits them for tensor parallelism.
//
// What it knows (tensor names per family: family.hpp; facts read from transformers' modeling_llama,
// modeling_qwen2/3, modeling_qwen3_moe, modeling_mixtral, modeling_glm/glm4, modeling_deepseek_v2/v3,
// the remote-code modeling_chatglm.py and modeling_baichuan.py, vLLM/MindIE-LLM's model folders).
// L = the family's layer prefix + i (model.layers.i; chatglm transformer.encoder.layers.i), A its
// attention module (self_attn; chatglm self_attention):
//
//   standard attention (llama, mistral, qwen2, qwen3, qwen3_moe, mixtral, glm, glm4):
//     L.A.{q,k,v}_proj   role q/k/v, one fused group (same input), column
//     L.A.o_proj         role o, row
//     (qwen2: q/k/v carry .bias, glm/glm4 too; qwen3/qwen3_moe: A.{q,k}_norm are norms)
//   fused q/k/v in one tensor (baichuan L.A.W_pack, chatglm L.A.query_key_value): role qkv,
//     ONE linear (one input range), column, rows q heads then k heads then v heads (baichuan:
//     hidden_size rows each; chatglm: heads x kv_channels, then multi_query_group_num x
//     kv_channels twice); the output linear is A.o_proj (chatglm A.dense), role o, row
//   dense MLP: L.mlp.{gate,up}_proj role gate/up, one fused group, column; L.mlp.down_proj role
//     down, row. glm/glm4: L.mlp.gate_up_proj, chatglm: L.mlp.dense_h_to_4h — role gate_up, ONE
//     linear, column, rows gate then up (intermediate rows each); down: down_proj / dense_4h_to_h.
//   MoE layers (qwen3_moe: MoE when (i + 1) % decoder_sparse_step == 0 and i not in
//     mlp_only_layers; mixtral: every layer): M = L.mlp (mixtral L.block_sparse_moe)
//     M.gate            role router, replicated, FLOAT by default
//     M.experts.j.{gate,up,down}_proj (mixtral: w1, w3, w2)  expert = j, gate/up fused per expert
//   model_type deepseek_v2, deepseek_v3 (MLA), per layer:
//     self_attn.q_a_proj           role q_a, replicated   } one fused group: both read the
//     self_attn.kv_a_proj_with_mqa role kv_a, replicated  } attention input (hidden states)
//     self_attn.q_proj             role q, column (only when q_lora_rank is null; then it is the
//                                  group partner of kv_a_proj_with_mqa instead of q_a_proj)
//     self_attn.q_b_proj           role q_b, column (input: q_a_layernorm output; alone)
//     self_attn.kv_b_proj          role kv_b, column, split by head (input: kv_a_layernorm; alone),
//                                  FLOAT by default (vllm-ascend's MLA asserts it unquantized; MindIE
//                                  splits its float weight; msModelSlim keeps it float)
//     self_attn.o_proj             role o, row
//     dense layers (i < first_k_dense_replace, or i % moe_layer_freq != 0): mlp.{gate,up,down}_proj
//     MoE layers: mlp.gate          role router, replicated, FLOAT by default (the router; its
//                                   e_score_correction_bias is a plain float tensor)
//                 mlp.experts.j.{gate,up,down}_proj  expert = j, gate/up fused per expert
//                 mlp.shared_experts.{gate,up,down}_proj  shared_expert, gate/up fused
//     Layers >= num_hidden_layers (DeepSeek-V3's MTP layer) are not decoder layers: their tensors
//     are left to the caller as non-linears (kept float by the quantizers).
//   Experts are split for TP like their dense counterparts (gate/up column, down row).
//   Everything else (embeddings, lm_head, norms, rotary buffers) is not a linear: float.
//
// A "fused group" is the set of linears that read the same input tensor: quantizers keep them
// all quantized or all float and give them one input_scale / input_offset (from the union of
// their calibration ranges). Its id is "<parent>:qkv", "<parent>:gate_up", "<parent>:q_a+kv_a"
// or, for a linear alone (a fused tensor such as W_pack included), its own prefix.
//
// config.json is read by model::parse_config (config.hpp): any other model_type is
// Errc::unsupported naming the supported ones. Shapes are checked
// against config.json (2-D weights, out/in features, all experts present); a mismatch is an
// Errc::format error naming the tensor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/arch/config.hpp"
#include "libst/core/dtype.hpp"
#include "libst/core/error.hpp"
#include "libst/format/safetensors.hpp"

namespace st {

class Checkpoint;

// qkv: q, k and v fused in one tensor; gate_up: gate and up fused in one tensor.
enum class LinearRole { q, k, v, o, gate, up, down, q_a, q_b, kv_a, kv_b, router, qkv, gate_up };
const char* role_name(LinearRole r);

// How MindIE's loader splits a linear's weight across tensor-parallel ranks.
enum class TpStyle {
  column,      // output rows split (dim 0): q/k/v, gate/up, q_b, kv_b, expert gate/up (fused
               // qkv / gate_up tensors: each part's rows split, tensor_parallel.hpp)
  row,         // input columns split (dim 1): o, down
  replicated,  // every rank holds all of it: q_a, kv_a_proj_with_mqa, router
};
const char* tp_style_name(TpStyle s);

struct LinearInfo {
  std::string prefix;  // module prefix, e.g. "model.layers.0.self_attn.q_proj"
  LinearRole role = LinearRole::q;
  int layer = -1;
  int expert = -1;             // routed expert index, -1 when not a routed expert
  bool shared_expert = false;  // DeepSeek mlp.shared_experts.*
  std::string group;           // fused group id (see above)
  TpStyle tp = TpStyle::column;
  bool float_by_default = false;  // the loaders need it float: the MoE router, MLA kv_b_proj
  int64_t out_features = 0, in_features = 0;
  bool has_bias = false;
  DType dtype = DType::F16;  // of the weight

  std::string weight_name() const { return prefix + ".weight"; }
  std::string bias_name() const { return prefix + ".bias"; }
  bool is_expert() const { return expert >= 0 || shared_expert; }
};

struct AttentionInfo {
  std::string prefix;  // "model.layers.0.self_attn"
  int layer = -1;
  bool mla = false;
  int64_t heads = 0, kv_heads = 0;
  int64_t head_dim = 0;  // standard: head_dim; MLA: qk_nope_head_dim + qk_rope_head_dim
  // MLA only (0 otherwise; q_lora_rank 0 = no q compression).
  int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_head_dim = 0, qk_rope_head_dim = 0, v_head_dim = 0;
};

// What a tensor is, for float/quantize decisions and TP splitting of non-linears.
enum class TensorKind { linear_weight, linear_bias, embedding, lm_head, norm, other };

// A tensor as the architecture sees it: name and shape (and dtype).
struct TensorShape {
  std::string name;
  DType dtype = DType::F16;
  std::vector<int64_t> shape;
};

struct ExpectedLinear;  // a linear config.json implies (architecture.cpp)

// What computes a linear's input as a per-channel scaling of something the quantizer may rewrite
// (anti-outlier smoothing divides it by s and multiplies the linear's input columns by s): the
// weight of the norm before it, or rows [row0, row0 + in_features) of another linear's output
// (down's input is act(gate x) * (up x): up's rows, the up half of a fused gate_up).
struct InputSource {
  std::string norm;                  // a norm weight's tensor name, or empty
  const LinearInfo* linear = nullptr;  // else the linear whose rows are scaled
  int64_t row0 = 0;
};

class Architecture {
 public:
  // config: config.json (read by model::parse_config); tensors: every tensor of the checkpoint.
  static Result<Architecture> from(const model::ModelConfig& config, const std::vector<TensorShape>& tensors);
  static Result<Architecture> from(const nlohmann::json& config, const std::vector<TensorShape>& tensors);
  // From an open checkpoint (its config() and tensor headers). Errors name the checkpoint.
  static Result<Architecture> of(const Checkpoint& ckpt);

  const std::string& model_type() const { return model_type_; }
  bool mla() const { return mla_; }
  int num_layers() const { return num_layers_; }
  int64_t hidden_size() const { return hidden_; }
  // dtype of the linear weights (F16, BF16 or F32; the same for all of them).
  DType dtype() const { return dtype_; }

  // Decoder linears in model order: layer by layer; attention, then MLP (shared experts, then
  // routed experts by index); within a module q, k, v, o / q_a, kv_a, q_b, kv_b, o / gate, up, down.
  const std::vector<LinearInfo>& linears() const { return linears_; }
  const std::vector<AttentionInfo>& attention() const { return attention_; }

  const LinearInfo* linear(std::string_view prefix) const;
  // The linear whose .weight or .bias this tensor is, or nullptr.
  const LinearInfo* linear_of_tensor(std::string_view tensor_name) const;
  // Members of a fused group, in model order.
  std::vector<const LinearInfo*> group(std::string_view group_id) const;
  TensorKind kind(std::string_view tensor_name) const;
  // The smoothable source of a linear's input (see InputSource), or nullopt: the routed experts'
  // and the router's shared input (every expert reads the post-attention norm's output, and so
  // does the router, which stays float) and linears with no such producer have none.
  std::optional<InputSource> input_source(const LinearInfo& l) const;
  const model::TensorNames& names() const { return *names_; }

 private:
  Status match(std::vector<ExpectedLinear>& expected, const std::vector<TensorShape>& tensors);

  std::string model_type_;
  const model::TensorNames* names_ = nullptr;
  bool mla_ = false;
  int num_layers_ = 0;
  int64_t hidden_ = 0;
  DType dtype_ = DType::F16;
  std::vector<LinearInfo> linears_;
  std::vector<AttentionInfo> attention_;
  std::vector<bool> moe_layers_;
  std::map<std::string, size_t, std::less<>> by_prefix_;
};

}  // namespace st
