// Split rules and packing names of libst/tensor_parallel on synthetic names and shapes.
#include "libst/arch/tensor_parallel.hpp"

#include <gtest/gtest.h>

namespace st {
namespace {

TpConfig llama() {  // 8 heads of 32, 4 KV heads, intermediate 688, vocab 8192
  TpConfig c;
  c.heads = 8;
  c.kv_heads = 4;
  c.intermediate = 688;
  c.vocab = 8192;
  return c;
}

SplitRule rule(const std::string& name, std::vector<int64_t> shape, int tp, TpConfig cfg = llama(), TpOptions o = {}) {
  auto r = split_rule(name, shape, cfg, tp, o);
  EXPECT_TRUE(r.ok()) << name << ": " << (r.ok() ? "" : r.error().str());
  return r.ok() ? r.value() : SplitRule{};
}

void expect_split(const SplitRule& r, int dim, int64_t chunks) {
  EXPECT_EQ(r.kind, SplitKind::split) << r.why;
  EXPECT_EQ(r.dim, dim) << r.why;
  EXPECT_EQ(r.chunks, chunks) << r.why;
}

Result<TpConfig> from_json(const nlohmann::json& j) {
  ST_ASSIGN(const model::ModelConfig c, model::parse_config(j));
  return TpConfig::of(c);
}

TEST(TensorParallel, ConfigFromJson) {
  const nlohmann::json llama = {{"model_type", "llama"}, {"num_attention_heads", 8}, {"num_key_value_heads", 4},
                                {"hidden_size", 256}, {"num_hidden_layers", 2}, {"intermediate_size", 688},
                                {"vocab_size", 8192}};
  auto c = from_json(llama);
  ASSERT_TRUE(c.ok()) << c.error().str();
  EXPECT_EQ(c->heads, 8);
  EXPECT_EQ(c->kv_heads, 4);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_FALSE(c->mla);
  nlohmann::json ds = llama;
  ds["model_type"] = "deepseek_v3";
  ds.update({{"kv_lora_rank", 64}, {"qk_nope_head_dim", 32}, {"qk_rope_head_dim", 16}, {"v_head_dim", 32},
             {"n_routed_experts", 8}, {"num_experts_per_tok", 2}, {"moe_intermediate_size", 192}});
  auto mla = from_json(ds);
  ASSERT_TRUE(mla.ok()) << mla.error().str();
  EXPECT_TRUE(mla->mla);
  EXPECT_EQ(mla->kv_heads, 8);  // MLA: every head has its own K/V
  EXPECT_EQ(mla->moe_intermediate, 192);
  EXPECT_FALSE(from_json(nlohmann::json::object()).ok());
  // A missing size is an error naming the key, not a 0 that skips its divisibility check.
  nlohmann::json no_inter = llama;
  no_inter.erase("intermediate_size");
  auto e = from_json(no_inter);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("intermediate_size"), std::string::npos) << e.error().str();
}

TEST(TensorParallel, DegreeRefusalsSayWhy) {
  const TpConfig c = llama();
  EXPECT_TRUE(check_tp_degree(c, 1).ok());
  EXPECT_TRUE(check_tp_degree(c, 2).ok());
  EXPECT_TRUE(check_tp_degree(c, 4).ok());
  EXPECT_TRUE(check_tp_degree(c, 8).ok());  // 4 KV heads replicated over 8 ranks
  auto three = check_tp_degree(c, 3);
  ASSERT_FALSE(three.ok());
  EXPECT_NE(three.error().message.find("8 attention heads"), std::string::npos) << three.error().message;
  EXPECT_FALSE(check_tp_degree(c, 16).ok());
  EXPECT_FALSE(check_tp_degree(c, 0).ok());

  TpConfig kv3 = c;  // 6 heads, 3 KV heads: tp 6 replicates, tp 2 neither divides nor replicates
  kv3.heads = 6;
  kv3.kv_heads = 3;
  kv3.intermediate = 60;
  kv3.vocab = 600;
  EXPECT_TRUE(check_tp_degree(kv3, 3).ok());
  EXPECT_TRUE(check_tp_degree(kv3, 6).ok());
  auto two = check_tp_degree(kv3, 2);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.error().message.find("KV heads"), std::string::npos) << two.error().message;

  TpConfig inter = c;
  inter.intermediate = 690;
  auto i4 = check_tp_degree(inter, 4);
  ASSERT_FALSE(i4.ok());
  EXPECT_NE(i4.error().message.find("intermediate_size"), std::string::npos);
  TpConfig vocab = c;
  vocab.vocab = 8190;
  auto v4 = check_tp_degree(vocab, 4);
  ASSERT_FALSE(v4.ok());
  EXPECT_NE(v4.error().message.find("vocab_size"), std::string::npos);
  TpConfig moe = c;
  moe.moe_intermediate = 190;
  EXPECT_FALSE(check_tp_degree(moe, 4).ok());
}

TEST(TensorParallel, ColumnParallelRows) {
  const std::string a = "model.layers.0.self_attn.";
  for (const char* s : {"weight", "bias", "deq_scale", "quant_bias", "weight_scale", "weight_offset"}) {
    expect_split(rule(a + "q_proj." + s, {256, 256}, 4), 0, 4);
    expect_split(rule(a + "k_proj." + s, {128, 256}, 4), 0, 4);
    expect_split(rule("model.layers.0.mlp.gate_proj." + std::string(s), {688, 256}, 4), 0, 4);
    expect_split(rule("model.layers.0.mlp.up_proj." + std::string(s), {688, 256}, 2), 0, 2);
  }
  for (const char* s : {"input_scale", "input_offset"})
    EXPECT_EQ(rule(a + "q_proj." + s, {1}, 4).kind, SplitKind::replicate);
}

TEST(TensorParallel, KvHeadsReplicatedWhenFewerThanRanks) {
  // 4 KV heads over 8 ranks: 4 chunks, rank r holds chunk r / 2 (the head its queries use).
  const SplitRule k = rule("model.layers.0.self_attn.k_proj.weight", {128, 256}, 8);
  expect_split(k, 0, 4);
  for (int r = 0; r < 8; ++r) EXPECT_EQ(k.chunk_of(r, 8), r / 2);
  const SplitRule q = rule("model.layers.0.self_attn.q_proj.weight", {256, 256}, 8);
  for (int r = 0; r < 8; ++r) EXPECT_EQ(q.chunk_of(r, 8), r);
  // One KV head: replicated everywhere.
  TpConfig mqa = llama();
  mqa.kv_heads = 1;
  EXPECT_EQ(rule("model.layers.0.self_attn.v_proj.weight", {32, 256}, 4, mqa).kind, SplitKind::replicate);
  // C8 kv-cache scales follow their projection.
  expect_split(rule("model.layers.0.self_attn.k_proj.kv_cache_scale", {128}, 8), 0, 4);
}

TEST(TensorParallel, RowParallel) {
  const std::string o = "model.layers.3.self_attn.o_proj.";
  expect_split(rule(o + "weight", {256, 256}, 4), 1, 4);
  expect_split(rule("model.layers.3.mlp.down_proj.weight", {256, 688}, 2), 1, 2);
  EXPECT_EQ(rule(o + "quant_bias", {256}, 4).kind, SplitKind::rank0);
  EXPECT_EQ(rule(o + "bias", {256}, 4).kind, SplitKind::rank0);
  for (const char* s : {"deq_scale", "weight_scale", "weight_offset", "input_scale", "input_offset"})
    EXPECT_EQ(rule(o + s, {256}, 4).kind, SplitKind::replicate) << s;
}

TEST(TensorParallel, DeepSeekMlaAndMoe) {
  TpConfig ds;
  ds.heads = 8;
  ds.kv_heads = 8;
  ds.intermediate = 768;
  ds.moe_intermediate = 192;
  ds.vocab = 8192;
  ds.mla = true;
  const std::string a = "model.layers.1.self_attn.";
  EXPECT_EQ(rule(a + "q_a_proj.weight", {96, 256}, 4, ds).kind, SplitKind::replicate);
  EXPECT_EQ(rule(a + "kv_a_proj_with_mqa.weight", {80, 256}, 4, ds).kind, SplitKind::replicate);
  EXPECT_EQ(rule(a + "kv_a_proj_with_mqa.deq_scale", {80}, 4, ds).kind, SplitKind::replicate);
  EXPECT_EQ(rule(a + "kv_a_layernorm.weight", {64}, 4, ds).kind, SplitKind::replicate);
  expect_split(rule(a + "q_b_proj.weight", {384, 96}, 4, ds), 0, 4);
  expect_split(rule(a + "kv_b_proj.weight", {512, 64}, 4, ds), 0, 4);
  expect_split(rule(a + "o_proj.weight", {256, 256}, 4, ds), 1, 4);
  const std::string m = "model.layers.1.mlp.";
  EXPECT_EQ(rule(m + "gate.weight", {8, 256}, 4, ds).kind, SplitKind::replicate);
  EXPECT_EQ(rule(m + "gate.e_score_correction_bias", {8}, 4, ds).kind, SplitKind::replicate);
  expect_split(rule(m + "experts.5.gate_proj.weight", {192, 256}, 4, ds), 0, 4);
  expect_split(rule(m + "experts.5.down_proj.weight", {256, 192}, 4, ds), 1, 4);
  EXPECT_EQ(rule(m + "experts.5.down_proj.quant_bias", {256}, 4, ds).kind, SplitKind::rank0);
  expect_split(rule(m + "shared_experts.up_proj.weight", {192, 256}, 4, ds), 0, 4);
}

TEST(TensorParallel, VocabularyNormsAndAttentionScales) {
  expect_split(rule("model.embed_tokens.weight", {8192, 256}, 4), 0, 4);
  expect_split(rule("lm_head.weight", {8192, 256}, 4), 0, 4);
  TpOptions rep;
  rep.replicate_embeddings = true;
  EXPECT_EQ(rule("model.embed_tokens.weight", {8192, 256}, 4, llama(), rep).kind, SplitKind::replicate);
  expect_split(rule("lm_head.weight", {8192, 256}, 4, llama(), rep), 0, 4);  // lm_head still split
  EXPECT_EQ(rule("model.norm.weight", {256}, 4).kind, SplitKind::replicate);
  EXPECT_EQ(rule("model.layers.0.self_attn.q_norm.weight", {32}, 4).kind, SplitKind::replicate);
  // FAQuant: q by head, k/v by KV head (replicated past kv_heads); FAKQuant k/v [1,1].
  expect_split(rule("model.layers.0.self_attn.fa_q.scale", {8, 1}, 4), 0, 4);
  expect_split(rule("model.layers.0.self_attn.fa_k.offset", {4, 1}, 8), 0, 4);
  EXPECT_EQ(rule("model.layers.0.self_attn.fa_v.scale", {1, 1}, 4).kind, SplitKind::replicate);
}

TEST(TensorParallel, RefusesWhatItCannotSplit) {
  const TpConfig c = llama();
  auto odd = split_rule("model.layers.0.mlp.gate_proj.weight", {690, 256}, c, 4);
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().tensor, "model.layers.0.mlp.gate_proj.weight");
  EXPECT_NE(odd.error().message.find("690"), std::string::npos) << odd.error().message;
  auto flat = split_rule("model.layers.0.self_attn.o_proj.weight", {256}, c, 2);
  EXPECT_FALSE(flat.ok());
  auto unknown = split_rule("model.layers.0.self_attn.q_proj.index", {64}, c, 2);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("'index'"), std::string::npos) << unknown.error().message;
  EXPECT_FALSE(split_rule("model.layers.0.self_attn.fa_k.scale", {3, 1}, c, 2).ok());
  EXPECT_FALSE(split_rule("model.layers.0.self_attn.q_proj.kv_cache_scale", {256}, c, 2).ok());
  // With head_dim known, q/k/v rows must be heads x head_dim (a config that lies would cut heads).
  TpConfig hd = c;
  hd.head_dim = 32;
  EXPECT_TRUE(split_rule("model.layers.0.self_attn.k_proj.weight", {128, 256}, hd, 8).ok());
  hd.kv_heads = 8;
  auto lie = split_rule("model.layers.0.self_attn.k_proj.weight", {128, 256}, hd, 8);
  ASSERT_FALSE(lie.ok());
  EXPECT_NE(lie.error().message.find("8 heads x 32 head_dim"), std::string::npos) << lie.error().message;
}

TEST(TensorParallel, PackTargets) {
  auto q = pack_target("model.layers.2.self_attn.q_proj.weight");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->packed, "model.layers.2.self_attn.query_key_value.weight");
  EXPECT_EQ(q->member, 0);
  EXPECT_EQ(q->members, 3);
  EXPECT_FALSE(q->shared);
  ASSERT_EQ(q->member_names.size(), 3u);
  EXPECT_EQ(q->member_names[2], "model.layers.2.self_attn.v_proj.weight");
  auto v = pack_target("model.layers.2.self_attn.v_proj.deq_scale");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->packed, "model.layers.2.self_attn.query_key_value.deq_scale");
  EXPECT_EQ(v->member, 2);
  auto up = pack_target("model.layers.1.mlp.experts.3.up_proj.weight_scale");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->packed, "model.layers.1.mlp.experts.3.gate_up_proj.weight_scale");
  EXPECT_EQ(up->member, 1);
  EXPECT_EQ(up->members, 2);
  auto is = pack_target("model.layers.0.mlp.gate_proj.input_scale");
  ASSERT_TRUE(is);
  EXPECT_TRUE(is->shared);
  EXPECT_FALSE(pack_target("model.layers.0.self_attn.o_proj.weight"));
  EXPECT_FALSE(pack_target("model.layers.0.self_attn.k_proj.kv_cache_scale"));
  EXPECT_FALSE(pack_target("model.layers.0.self_attn.q_a_proj.weight"));
  EXPECT_FALSE(pack_target("q_proj.weight"));
}

}  // namespace
}  // namespace st

namespace st {
namespace {

// Fused tensors are split by sections, as MindIE's get_weights_col_packed_qkv / _mlp do.
TEST(TensorParallel, FusedTensorsSplitBySections) {
  TpConfig glm;  // chatglm: 4 heads of 8, 2 query groups, ffn 24
  glm.family = model::Family::chatglm;
  glm.heads = 4, glm.kv_heads = 2, glm.head_dim = 8, glm.intermediate = 24, glm.vocab = 64;
  const std::string L = "transformer.encoder.layers.0.";
  for (const char* suffix : {"weight", "bias", "deq_scale", "quant_bias", "weight_scale"}) {
    const SplitRule qkv = rule(L + "self_attention.query_key_value." + suffix, {64, 16}, 4, glm);
    expect_split(qkv, 0, 4);
    EXPECT_EQ(qkv.sections, (std::vector<RowSection>{{32, 4}, {16, 2}, {16, 2}})) << suffix;
  }
  const SplitRule mlp = rule(L + "mlp.dense_h_to_4h.weight", {48, 16}, 2, glm);
  EXPECT_EQ(mlp.sections, (std::vector<RowSection>{{24, 2}, {24, 2}}));
  EXPECT_EQ(mlp.rows_of(1, 2, 48).front().first, 12);
  EXPECT_EQ(mlp.rows_of(1, 2, 48).back().first, 36);
  expect_split(rule(L + "self_attention.dense.weight", {16, 32}, 2, glm), 1, 2);
  expect_split(rule(L + "mlp.dense_4h_to_h.weight", {16, 24}, 2, glm), 1, 2);
  expect_split(rule("transformer.output_layer.weight", {64, 16}, 2, glm), 0, 2);
  expect_split(rule("transformer.embedding.word_embeddings.weight", {64, 16}, 2, glm), 0, 2);
  EXPECT_EQ(rule(L + "self_attention.query_key_value.input_scale", {1}, 2, glm).kind, SplitKind::replicate);
  EXPECT_EQ(rule(L + "self_attention.query_key_value.weight", {64, 16}, 1, glm).kind, SplitKind::replicate);
  // Rows that disagree with config.json are refused, not cut mid-head.
  EXPECT_FALSE(split_rule(L + "self_attention.query_key_value.weight", {60, 16}, glm, 2).ok());
  TpConfig baichuan = glm;
  baichuan.family = model::Family::baichuan;
  baichuan.kv_heads = 4;
  EXPECT_EQ(rule("model.layers.0.self_attn.W_pack.weight", {96, 32}, 2, baichuan).sections,
            (std::vector<RowSection>{{32, 2}, {32, 2}, {32, 2}}));
  // Outside the family a module of that name is not a linear it knows.
  EXPECT_EQ(rule("model.layers.0.self_attn.W_pack.weight", {96, 32}, 2).why, "not a linear");
}

TEST(TensorParallel, MixtralExperts) {
  TpConfig m = llama();
  m.family = model::Family::mixtral;
  const std::string E = "model.layers.0.block_sparse_moe.";
  expect_split(rule(E + "experts.3.w1.weight", {688, 256}, 2, m), 0, 2);
  expect_split(rule(E + "experts.3.w3.weight", {688, 256}, 2, m), 0, 2);
  expect_split(rule(E + "experts.3.w2.weight", {256, 688}, 2, m), 1, 2);
  EXPECT_EQ(rule(E + "gate.weight", {8, 256}, 2, m).kind, SplitKind::replicate);
  const auto t = pack_target(E + "experts.3.w3.weight");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->packed, E + "experts.3.gate_up_proj.weight");
  EXPECT_EQ(t->member, 1);
}

}  // namespace
}  // namespace st
