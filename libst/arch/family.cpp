// The families' model_type strings and tensor names.
#include "libst/arch/family.hpp"

namespace st::model {

namespace {

const std::pair<const char*, Family> kFamilies[] = {
    {"llama", Family::llama},         {"mistral", Family::mistral},   {"qwen2", Family::qwen2},
    {"qwen3", Family::qwen3},         {"qwen3_moe", Family::qwen3_moe}, {"mixtral", Family::mixtral},
    {"glm", Family::glm},             {"glm4", Family::glm4},         {"chatglm", Family::chatglm},
    {"baichuan", Family::baichuan},   {"deepseek_v2", Family::deepseek_v2}, {"deepseek_v3", Family::deepseek_v3},
};

TensorNames hf_names() { return TensorNames{}; }

TensorNames mixtral_names() {
  TensorNames n;
  n.moe = "block_sparse_moe";
  n.expert_gate = "w1", n.expert_up = "w3", n.expert_down = "w2";
  return n;
}

TensorNames glm_names() {
  TensorNames n;
  n.gate = n.up = "";
  n.gate_up = "gate_up_proj";
  return n;
}

TensorNames chatglm_names() {
  TensorNames n;
  n.layers = "transformer.encoder.layers.";
  n.attn = "self_attention";
  n.q = n.k = n.v = "";
  n.qkv = "query_key_value";
  n.o = "dense";
  n.gate = n.up = "";
  n.gate_up = "dense_h_to_4h";
  n.down = "dense_4h_to_h";
  n.embed = "transformer.embedding.word_embeddings.weight";
  n.final_norm = "transformer.encoder.final_layernorm.weight";
  n.lm_head = "transformer.output_layer";
  return n;
}

TensorNames baichuan_names() {
  TensorNames n;
  n.q = n.k = n.v = "";
  n.qkv = "W_pack";
  return n;
}

}  // namespace

const char* family_name(Family f) {
  for (const auto& [name, fam] : kFamilies)
    if (fam == f) return name;
  return "?";
}

bool family_of(const std::string& model_type, Family& out) {
  for (const auto& [name, fam] : kFamilies)
    if (model_type == name) return out = fam, true;
  return false;
}

std::string supported_families() {
  std::string s;
  for (const auto& [name, fam] : kFamilies) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}

const TensorNames& tensor_names(Family f) {
  static const TensorNames hf = hf_names(), mixtral = mixtral_names(), glm = glm_names(), chatglm = chatglm_names(),
                           baichuan = baichuan_names();
  switch (f) {
    case Family::mixtral: return mixtral;
    case Family::glm:
    case Family::glm4: return glm;
    case Family::chatglm: return chatglm;
    case Family::baichuan: return baichuan;
    default: return hf;
  }
}

}  // namespace st::model
