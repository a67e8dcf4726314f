// The families beyond llama / qwen / DeepSeek: config.json keys mapped onto ModelConfig, their
// linears and smoothing sources in Architecture, refusals of variants that are not run, ALiBi slopes.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "libst/arch/architecture.hpp"
#include "libst/arch/config.hpp"
#include "libst/model/model.hpp"

namespace st {
namespace {

using nlohmann::json;
using model::Family;
using model::ModelConfig;

json chatglm3() {  // ChatGLM3-6B's config.json, shrunk
  return json::parse(R"({"model_type": "chatglm", "hidden_size": 32, "num_layers": 2, "num_attention_heads": 4,
    "kv_channels": 16, "multi_query_attention": true, "multi_query_group_num": 2, "ffn_hidden_size": 24,
    "padded_vocab_size": 64, "seq_length": 128, "layernorm_epsilon": 1e-5, "rmsnorm": true, "add_bias_linear": false,
    "add_qkv_bias": true, "apply_residual_connection_post_layernorm": false, "post_layer_norm": true,
    "original_rope": true, "rope_ratio": 50, "torch_dtype": "float16"})");
}

json baichuan(int layers) {
  json j = json::parse(R"({"model_type": "baichuan", "hidden_size": 32, "intermediate_size": 48,
    "num_attention_heads": 4, "vocab_size": 125696, "model_max_length": 4096, "rms_norm_eps": 1e-6})");
  j["num_hidden_layers"] = layers;
  if (layers != 40) j["max_position_embeddings"] = 4096;
  return j;
}

json hf(const char* type) {
  return json{{"model_type", type},     {"hidden_size", 32},       {"intermediate_size", 48}, {"num_hidden_layers", 3},
              {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 64}};
}

ModelConfig parse(const json& j) {
  auto c = model::parse_config(j);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().str());
  return c.ok() ? *c : ModelConfig{};
}

TEST(Families, ChatglmKeys) {
  const ModelConfig c = parse(chatglm3());
  EXPECT_EQ(c.family, Family::chatglm);
  EXPECT_EQ(c.layers, 2);
  EXPECT_EQ(c.kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.intermediate, 24);
  EXPECT_EQ(c.vocab, 64);
  EXPECT_EQ(c.max_positions, 128);
  EXPECT_DOUBLE_EQ(c.rms_eps, 1e-5);
  EXPECT_EQ(c.rope_dim(), 8);  // half of kv_channels
  EXPECT_TRUE(c.rope_interleave);
  EXPECT_DOUBLE_EQ(c.rope.theta, 500000.0);  // 10000 * rope_ratio
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_EQ(c.names().qkv, "query_key_value");
}

TEST(Families, GlmPartialRotaryAndBiases) {
  json j = hf("glm4");
  j["head_dim"] = 16;
  ModelConfig c = parse(j);
  EXPECT_EQ(c.rope_dim(), 8);  // partial_rotary_factor defaults to 0.5
  EXPECT_TRUE(c.rope_interleave && c.qkv_bias && c.sandwich_norms);
  EXPECT_FALSE(c.attention_bias);  // o_proj has no bias
  j["rope_parameters"] = {{"rope_theta", 10000.0}, {"partial_rotary_factor", 0.25}};
  EXPECT_EQ(parse(j).rope_dim(), 4);
  j["model_type"] = "glm";
  EXPECT_FALSE(parse(j).sandwich_norms);
}

TEST(Families, BaichuanPositionsAndHead) {
  ModelConfig c = parse(baichuan(32));
  EXPECT_FALSE(c.alibi);
  EXPECT_TRUE(c.norm_head);  // Baichuan2's vocabulary
  EXPECT_EQ(c.names().qkv, "W_pack");
  c = parse(baichuan(40));
  EXPECT_TRUE(c.alibi);
  EXPECT_EQ(c.max_positions, 4096);  // model_max_length
  json v1 = baichuan(32);
  v1["vocab_size"] = 64000;  // Baichuan (v1): a plain lm_head
  EXPECT_FALSE(parse(v1).norm_head);
}

TEST(Families, MoeLayers) {
  json q = hf("qwen3_moe");
  q.update({{"num_experts", 8}, {"num_experts_per_tok", 2}, {"moe_intermediate_size", 16}, {"mlp_only_layers", {1}}});
  ModelConfig c = parse(q);
  EXPECT_TRUE(c.is_moe_layer(0));
  EXPECT_FALSE(c.is_moe_layer(1));
  EXPECT_EQ(c.scoring_func, "softmax");
  EXPECT_FALSE(c.norm_topk_prob);
  q["decoder_sparse_step"] = 2;
  q["mlp_only_layers"] = json::array();
  c = parse(q);
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_TRUE(c.is_moe_layer(1));  // (1 + 1) % 2 == 0
  EXPECT_FALSE(c.is_moe_layer(2));
  json m = hf("mixtral");
  m["num_local_experts"] = 4;
  c = parse(m);
  EXPECT_EQ(c.n_routed_experts, 4);
  EXPECT_EQ(c.moe_intermediate, 48);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_TRUE(c.is_moe_layer(2));
  EXPECT_EQ(c.names().expert_up, "w3");
}

// A variant the code does not run is one error naming the key, never a silent wrong answer.
TEST(Families, UnsupportedVariantsNameTheKey) {
  const std::vector<std::tuple<std::function<json()>, std::function<void(json&)>, const char*>> cases = {
      {chatglm3, [](json& j) { j["multi_query_attention"] = false; }, "'multi_query_attention'"},
      {chatglm3, [](json& j) { j["rmsnorm"] = false; }, "'rmsnorm'"},
      {chatglm3, [](json& j) { j["apply_residual_connection_post_layernorm"] = true; }, "'apply_residual_connection_post_layernorm'"},
      {chatglm3, [](json& j) { j["post_layer_norm"] = false; }, "'post_layer_norm'"},
      {chatglm3, [](json& j) { j["pre_seq_len"] = 128; }, "'pre_seq_len'"},
      {chatglm3, [](json& j) { j["position_encoding_2d"] = true; }, "'position_encoding_2d'"},
      {[] { return baichuan(40); }, [](json& j) { j["max_position_embeddings"] = 4096; }, "'max_position_embeddings'"},
      {[] { return baichuan(32); }, [](json& j) { j.erase("max_position_embeddings"); }, "'max_position_embeddings'"},
      {[] { return baichuan(32); }, [](json& j) { j["num_key_value_heads"] = 2; }, "'num_key_value_heads'"},
      {[] { return hf("llama"); }, [](json& j) { j["partial_rotary_factor"] = 0.5; }, "'partial_rotary_factor'"},
      {[] { return hf("qwen3_moe"); }, [](json& j) { j["use_sliding_window"] = true; }, "'use_sliding_window'"},
  };
  for (const auto& [make, edit, key] : cases) {
    json j = make();
    edit(j);
    auto c = model::parse_config(j);
    ASSERT_FALSE(c.ok()) << j.dump();
    EXPECT_EQ(c.error().code, Errc::unsupported) << c.error().str();
    EXPECT_NE(c.error().message.find(key), std::string::npos) << c.error().message;
    EXPECT_EQ(c.error().message.find('\n'), std::string::npos);
  }
}

TensorShape t2(const std::string& name, int64_t a, int64_t b) { return {name, DType::F16, {a, b}}; }

TEST(Families, ChatglmLinearsAndSmoothingSources) {
  const std::string L = "transformer.encoder.layers.";
  std::vector<TensorShape> ts;
  for (int i = 0; i < 2; ++i) {
    const std::string p = L + std::to_string(i) + ".";
    ts.push_back(t2(p + "self_attention.query_key_value.weight", (4 + 2 * 2) * 16, 32));
    ts.push_back({p + "self_attention.query_key_value.bias", DType::F16, {128}});
    ts.push_back(t2(p + "self_attention.dense.weight", 32, 64));
    ts.push_back(t2(p + "mlp.dense_h_to_4h.weight", 48, 32));
    ts.push_back(t2(p + "mlp.dense_4h_to_h.weight", 32, 24));
  }
  auto a = Architecture::from(chatglm3(), ts);
  ASSERT_TRUE(a.ok()) << a.error().str();
  ASSERT_EQ(a->linears().size(), 8u);
  const LinearInfo* qkv = a->linear(L + "0.self_attention.query_key_value");
  ASSERT_NE(qkv, nullptr);
  EXPECT_EQ(qkv->role, LinearRole::qkv);
  EXPECT_TRUE(qkv->has_bias);
  EXPECT_EQ(a->group(qkv->group).size(), 1u);  // one tensor, one input range
  EXPECT_EQ(a->input_source(*qkv)->norm, L + "0.input_layernorm.weight");
  const LinearInfo* gu = a->linear(L + "1.mlp.dense_h_to_4h");
  EXPECT_EQ(gu->role, LinearRole::gate_up);
  EXPECT_EQ(a->input_source(*gu)->norm, L + "1.post_attention_layernorm.weight");
  const auto down = a->input_source(*a->linear(L + "1.mlp.dense_4h_to_h"));
  ASSERT_TRUE(down && down->linear);
  EXPECT_EQ(down->linear, gu);
  EXPECT_EQ(down->row0, 24);  // the up half
  EXPECT_EQ(a->linear(L + "0.self_attention.dense")->tp, TpStyle::row);
  EXPECT_EQ(a->kind("transformer.embedding.word_embeddings.weight"), TensorKind::embedding);
  EXPECT_EQ(a->kind("transformer.output_layer.weight"), TensorKind::lm_head);
  EXPECT_EQ(a->kind("transformer.rotary_pos_emb.inv_freq"), TensorKind::other);
  // A 2-D tensor the family does not have in a layer is refused, not skipped.
  ts.push_back(t2(L + "0.self_attention.extra.weight", 4, 4));
  EXPECT_FALSE(Architecture::from(chatglm3(), ts).ok());
}

TEST(Families, MixtralExpertsAndRouter) {
  json m = hf("mixtral");
  m["num_hidden_layers"] = 1;
  m["num_local_experts"] = 2;
  std::vector<TensorShape> ts = {t2("model.layers.0.self_attn.q_proj.weight", 32, 32),
                                 t2("model.layers.0.self_attn.k_proj.weight", 16, 32),
                                 t2("model.layers.0.self_attn.v_proj.weight", 16, 32),
                                 t2("model.layers.0.self_attn.o_proj.weight", 32, 32),
                                 t2("model.layers.0.block_sparse_moe.gate.weight", 2, 32)};
  for (int e = 0; e < 2; ++e) {
    const std::string p = "model.layers.0.block_sparse_moe.experts." + std::to_string(e) + ".";
    ts.push_back(t2(p + "w1.weight", 48, 32));
    ts.push_back(t2(p + "w3.weight", 48, 32));
    ts.push_back(t2(p + "w2.weight", 32, 48));
  }
  auto a = Architecture::from(m, ts);
  ASSERT_TRUE(a.ok()) << a.error().str();
  const LinearInfo* router = a->linear("model.layers.0.block_sparse_moe.gate");
  ASSERT_NE(router, nullptr);
  EXPECT_TRUE(router->float_by_default);
  const LinearInfo* w3 = a->linear("model.layers.0.block_sparse_moe.experts.1.w3");
  EXPECT_EQ(w3->role, LinearRole::up);
  EXPECT_EQ(w3->expert, 1);
  EXPECT_EQ(w3->group, "model.layers.0.block_sparse_moe.experts.1:gate_up");
  EXPECT_FALSE(a->input_source(*w3));  // every expert and the router read the same norm output
  EXPECT_EQ(a->input_source(*a->linear("model.layers.0.block_sparse_moe.experts.1.w2"))->linear, w3);
}

TEST(Families, AlibiSlopesAsBaichuanComputesThem) {
  const auto s8 = model::alibi_slopes(8);
  for (int i = 0; i < 8; ++i) EXPECT_DOUBLE_EQ(s8[size_t(i)], std::pow(2.0, -(i + 1)));
  const auto s40 = model::alibi_slopes(40);  // 32 of 2^(-8/32 (i+1)), then every other one of 64
  ASSERT_EQ(s40.size(), 40u);
  EXPECT_NEAR(s40[31], std::pow(2.0, -8.0), 1e-15);
  for (int j = 0; j < 8; ++j) EXPECT_NEAR(s40[size_t(32 + j)], std::pow(2.0, -(2 * j + 1) / 8.0), 1e-15);
}

}  // namespace
}  // namespace st
