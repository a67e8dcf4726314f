// Architecture: linears, fused groups and TP styles of the fixture models and synthetic configs.
#include "libst/arch/architecture.hpp"

#include <gtest/gtest.h>

#include "libst/format/checkpoint.hpp"
#include "st_test_util.hpp"

namespace st {
namespace {

using st_test::open_arch;

TEST(Architecture, LlamaFixture) {
  const Architecture a = open_arch("llama-4m-fp16");
  EXPECT_EQ(a.model_type(), "llama");
  EXPECT_FALSE(a.mla());
  EXPECT_EQ(a.dtype(), DType::F16);
  ASSERT_EQ(a.linears().size(), 4u * 7u);
  const LinearInfo& q = a.linears()[0];
  EXPECT_EQ(q.prefix, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(q.role, LinearRole::q);
  EXPECT_EQ(q.tp, TpStyle::column);
  EXPECT_EQ(q.out_features, 256);
  EXPECT_EQ(q.in_features, 256);
  const LinearInfo* k = a.linear("model.layers.0.self_attn.k_proj");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->out_features, 128);
  EXPECT_EQ(k->group, q.group);
  EXPECT_EQ(a.group(q.group).size(), 3u);
  const LinearInfo* o = a.linear("model.layers.0.self_attn.o_proj");
  EXPECT_EQ(o->tp, TpStyle::row);
  EXPECT_EQ(a.group(o->group).size(), 1u);
  const LinearInfo* up = a.linear("model.layers.3.mlp.up_proj");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->group, "model.layers.3.mlp:gate_up");
  EXPECT_EQ(a.linear("model.layers.3.mlp.down_proj")->tp, TpStyle::row);
  EXPECT_EQ(a.kind("model.embed_tokens.weight"), TensorKind::embedding);
  EXPECT_EQ(a.kind("lm_head.weight"), TensorKind::lm_head);
  EXPECT_EQ(a.kind("model.layers.0.input_layernorm.weight"), TensorKind::norm);
  EXPECT_EQ(a.kind("model.layers.0.mlp.gate_proj.weight"), TensorKind::linear_weight);
  ASSERT_EQ(a.attention().size(), 4u);
  EXPECT_EQ(a.attention()[0].heads, 8);
  EXPECT_EQ(a.attention()[0].kv_heads, 4);
  EXPECT_EQ(a.attention()[0].head_dim, 32);
}

TEST(Architecture, Bf16Fixture) { EXPECT_EQ(open_arch("llama-4m-bf16").dtype(), DType::BF16); }

TEST(Architecture, DeepseekMlaFixture) {
  const Architecture a = open_arch("deepseekv3-mla-6m-fp16");
  EXPECT_TRUE(a.mla());
  // layer 0 dense: 5 attention + 3 mlp; layers 1..3: 5 attention + router + 3 shared + 8*3 experts.
  EXPECT_EQ(a.linears().size(), 8u + 3u * (5u + 1u + 3u + 24u));
  const LinearInfo* qa = a.linear("model.layers.0.self_attn.q_a_proj");
  const LinearInfo* kva = a.linear("model.layers.0.self_attn.kv_a_proj_with_mqa");
  ASSERT_TRUE(qa && kva);
  EXPECT_EQ(qa->group, kva->group);
  EXPECT_EQ(qa->tp, TpStyle::replicated);
  EXPECT_EQ(kva->tp, TpStyle::replicated);
  EXPECT_EQ(kva->out_features, 80);
  EXPECT_EQ(a.linear("model.layers.0.self_attn.q_b_proj")->tp, TpStyle::column);
  EXPECT_EQ(a.linear("model.layers.0.self_attn.kv_b_proj")->tp, TpStyle::column);
  EXPECT_TRUE(a.linear("model.layers.0.self_attn.kv_b_proj")->float_by_default);
  EXPECT_FALSE(a.linear("model.layers.0.self_attn.q_b_proj")->float_by_default);
  const LinearInfo* router = a.linear("model.layers.1.mlp.gate");
  ASSERT_NE(router, nullptr);
  EXPECT_TRUE(router->float_by_default);
  EXPECT_EQ(router->role, LinearRole::router);
  const LinearInfo* e7 = a.linear("model.layers.2.mlp.experts.7.up_proj");
  ASSERT_NE(e7, nullptr);
  EXPECT_EQ(e7->expert, 7);
  EXPECT_EQ(e7->group, "model.layers.2.mlp.experts.7:gate_up");
  EXPECT_EQ(a.group(e7->group).size(), 2u);
  const LinearInfo* sh = a.linear("model.layers.1.mlp.shared_experts.down_proj");
  ASSERT_NE(sh, nullptr);
  EXPECT_TRUE(sh->shared_expert);
  EXPECT_EQ(sh->tp, TpStyle::row);
  EXPECT_EQ(a.kind("model.layers.1.mlp.gate.e_score_correction_bias"), TensorKind::other);
  EXPECT_EQ(a.attention()[0].kv_lora_rank, 64);
  EXPECT_EQ(a.attention()[0].q_lora_rank, 96);
}

nlohmann::json tiny_llama() {
  return {{"model_type", "qwen2"}, {"num_hidden_layers", 1}, {"hidden_size", 8},   {"num_attention_heads", 2},
          {"num_key_value_heads", 1}, {"intermediate_size", 12}, {"vocab_size", 16}};
}
std::vector<TensorShape> tiny_tensors(bool bias) {
  std::vector<TensorShape> t = {{"model.layers.0.self_attn.q_proj.weight", DType::BF16, {8, 8}},
                                {"model.layers.0.self_attn.k_proj.weight", DType::BF16, {4, 8}},
                                {"model.layers.0.self_attn.v_proj.weight", DType::BF16, {4, 8}},
                                {"model.layers.0.self_attn.o_proj.weight", DType::BF16, {8, 8}},
                                {"model.layers.0.mlp.gate_proj.weight", DType::BF16, {12, 8}},
                                {"model.layers.0.mlp.up_proj.weight", DType::BF16, {12, 8}},
                                {"model.layers.0.mlp.down_proj.weight", DType::BF16, {8, 12}}};
  if (bias) t.push_back({"model.layers.0.self_attn.q_proj.bias", DType::BF16, {8}});
  return t;
}

TEST(Architecture, BiasAndHeadDimFallback) {
  auto a = Architecture::from(tiny_llama(), tiny_tensors(true));
  ASSERT_TRUE(a.ok()) << a.error().str();
  EXPECT_TRUE(a->linear("model.layers.0.self_attn.q_proj")->has_bias);
  EXPECT_FALSE(a->linear("model.layers.0.self_attn.k_proj")->has_bias);
  EXPECT_EQ(a->kind("model.layers.0.self_attn.q_proj.bias"), TensorKind::linear_bias);
  EXPECT_EQ(a->attention()[0].head_dim, 4);
}

TEST(Architecture, UnsupportedModelTypeNamesSupported) {
  auto cfg = tiny_llama();
  cfg["model_type"] = "gpt2";
  auto a = Architecture::from(cfg, tiny_tensors(false));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, Errc::unsupported);
  EXPECT_NE(a.error().message.find("gpt2"), std::string::npos);
  EXPECT_NE(a.error().message.find("deepseek_v3"), std::string::npos);
}

TEST(Architecture, Refusals) {
  auto t = tiny_tensors(false);
  t.pop_back();  // no down_proj
  auto a = Architecture::from(tiny_llama(), t);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().tensor, "model.layers.0.mlp.down_proj.weight");

  t = tiny_tensors(false);
  t[1].shape = {4, 8, 1};
  a = Architecture::from(tiny_llama(), t);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("2-D"), std::string::npos);

  t = tiny_tensors(false);
  t[1].shape = {5, 8};
  a = Architecture::from(tiny_llama(), t);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().tensor, "model.layers.0.self_attn.k_proj.weight");

  t = tiny_tensors(false);
  t[2].dtype = DType::I8;
  a = Architecture::from(tiny_llama(), t);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code, Errc::unsupported);

  t = tiny_tensors(false);
  t.push_back({"model.layers.0.self_attn.mystery.weight", DType::BF16, {8, 8}});
  a = Architecture::from(tiny_llama(), t);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().tensor, "model.layers.0.self_attn.mystery.weight");

  a = Architecture::from(nlohmann::json::object(), tiny_tensors(false));
  EXPECT_FALSE(a.ok());
}

}  // namespace
}  // namespace st
