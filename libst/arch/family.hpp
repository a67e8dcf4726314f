// The model families libst knows (config.json's model_type) and how each names its tensors.
//
//   family       model_type    checkpoints (tensor layout read from)
//   llama        llama         Llama 2/3, DeepSeek-R1-Distill-Llama (transformers modeling_llama)
//   mistral      mistral       Mistral (modeling_mistral)
//   qwen2        qwen2         Qwen2, Qwen2.5, DeepSeek-R1-Distill-Qwen (modeling_qwen2)
//   qwen3        qwen3         Qwen3 dense (modeling_qwen3)
//   qwen3_moe    qwen3_moe     Qwen3-30B-A3B, Qwen3-235B-A22B (modeling_qwen3_moe)
//   mixtral      mixtral       Mixtral-8x7B (modeling_mixtral; experts block_sparse_moe.experts.j.w1/w3/w2)
//   glm          glm           GLM-4-9B-chat-hf (modeling_glm: fused mlp.gate_up_proj)
//   glm4         glm4          GLM-4-9B-0414 (modeling_glm4: glm plus post_self_attn / post_mlp norms)
//   chatglm      chatglm       ChatGLM2/3-6B, GLM-4-9B-chat (THUDM remote code modeling_chatglm.py:
//                              transformer.encoder.layers.i.self_attention.query_key_value, ...)
//   baichuan     baichuan      Baichuan(2)-7B / -13B (remote code modeling_baichuan.py: fused
//                              self_attn.W_pack; the 13B uses ALiBi)
//   deepseek_v2  deepseek_v2   DeepSeek-V2 (modeling_deepseek_v2: MLA + MoE)
//   deepseek_v3  deepseek_v3   DeepSeek-V3 / R1 (modeling_deepseek_v3)
#pragma once

#include <string>

namespace st::model {

enum class Family { llama, mistral, qwen2, qwen3, qwen3_moe, mixtral, glm, glm4, chatglm, baichuan, deepseek_v2, deepseek_v3 };
const char* family_name(Family f);
// The family of a model_type, or false.
bool family_of(const std::string& model_type, Family& out);
// "llama, mistral, ..." in the order above.
std::string supported_families();

// Where a family keeps its tensors. Leaf names are module names inside their parent; an empty
// leaf means the family has no such module (e.g. q_proj where q/k/v are one fused tensor).
struct TensorNames {
  std::string layers = "model.layers.";  // decoder layer i is `layers` + i
  std::string attn = "self_attn";
  std::string q = "q_proj", k = "k_proj", v = "v_proj";
  std::string qkv;  // one fused q/k/v linear (rows: q heads, then k heads, then v heads)
  std::string o = "o_proj";
  std::string mlp = "mlp";  // the dense MLP and (except mixtral) the MoE block
  std::string moe = "mlp";  // the MoE block: router `moe`.gate, experts `moe`.experts.j
  std::string gate = "gate_proj", up = "up_proj", down = "down_proj";
  std::string gate_up;  // one fused gate/up linear (rows: gate, then up)
  std::string expert_gate = "gate_proj", expert_up = "up_proj", expert_down = "down_proj";
  std::string input_norm = "input_layernorm", post_norm = "post_attention_layernorm";
  std::string embed = "model.embed_tokens.weight";
  std::string final_norm = "model.norm.weight";
  std::string lm_head = "lm_head";  // a module prefix (its tensor is lm_head + ".weight")

  std::string layer(int i) const { return layers + std::to_string(i); }
};
const TensorNames& tensor_names(Family f);

}  // namespace st::model
