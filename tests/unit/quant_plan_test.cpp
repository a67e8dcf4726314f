// The W8A8 plan on the fixture models: every linear's scheme and why, fused groups, borrowed
// expert ranges, output tensors and files, decided without writing anything.
#include "libst/quant/quant_plan.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <set>

#include "libst/format/checkpoint.hpp"
#include "st_test_util.hpp"

namespace st {
namespace {

std::unique_ptr<Checkpoint> open_model(const std::string& model) {
  auto c = Checkpoint::open(st_test::fixtures() + "/" + model);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().str());
  return std::move(c).value();
}

QuantPlan plan_of(const Checkpoint& ckpt, const QuantizeOptions& o) {
  auto p = plan_quantization(ckpt, o);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().str());
  return p.ok() ? std::move(p).value() : QuantPlan{};
}

const PlannedLinear& planned(const QuantPlan& plan, const std::string& prefix) {
  for (const auto& p : plan.linears)
    if (p.linear.prefix == prefix) return p;
  ADD_FAILURE() << "no planned linear " << prefix;
  return plan.linears.front();
}

size_t count_scheme(const QuantPlan& plan, LinearScheme s) {
  size_t n = 0;
  for (const auto& p : plan.linears) n += p.scheme == s;
  return n;
}

std::set<std::string> groups_of(const QuantPlan& plan) {
  std::set<std::string> g;
  for (const auto& p : plan.linears) g.insert(p.linear.group);
  return g;
}

// A statistics value for every linear the plan quantizes statically: input range [-1, 1],
// except the ones given.
ActivationStats stats_for(const Checkpoint& ckpt, const std::set<std::string>& skip,
                          const std::map<std::string, std::pair<float, float>>& ranges) {
  auto arch = Architecture::of(ckpt);
  EXPECT_TRUE(arch.ok());
  ActivationStats s;
  for (const auto& l : arch->linears()) {
    if (skip.count(l.prefix)) continue;
    LinearStats ls;
    ls.min = -1;
    ls.max = 1;
    if (auto it = ranges.find(l.prefix); it != ranges.end()) std::tie(ls.min, ls.max) = it->second;
    ls.tokens = 16;
    s.linears[l.prefix] = ls;
  }
  return s;
}

TEST(QuantPlan, LlamaDynamicQuantizesEveryLinearInItsGroup) {
  auto ckpt = open_model("llama-4m-fp16");
  QuantizeOptions o;
  o.mode = W8A8Mode::w8a8_dynamic;
  const QuantPlan plan = plan_of(*ckpt, o);
  ASSERT_EQ(plan.linears.size(), 28u);  // 4 layers x q, k, v, o, gate, up, down
  EXPECT_EQ(count_scheme(plan, LinearScheme::w8a8_dynamic), 28u);
  EXPECT_EQ(plan.linears_quantized, 28u);
  EXPECT_EQ(plan.linears_float, 0u);
  EXPECT_EQ(groups_of(plan).size(), 16u);  // per layer: qkv, o, gate_up, down
  for (const auto& p : plan.linears) EXPECT_EQ(p.why, "the mode's scheme (W8A8_DYNAMIC)");
  // Every input tensor is mapped back to its linear; each linear's weight is found.
  for (const auto& p : plan.linears) {
    ASSERT_NE(p.weight, kNoTensor) << p.linear.prefix;
    EXPECT_EQ(ckpt->tensors()[p.weight].name(), p.linear.weight_name());
    EXPECT_EQ(p.emit_at, p.weight);
    EXPECT_EQ(plan.linear_of(p.weight), &p);
  }
  // 39 inputs: 28 weights become 3 tensors each (weight, weight_scale, weight_offset).
  EXPECT_EQ(plan.outputs.size(), 39u - 28u + 28u * 3u);
  ASSERT_EQ(plan.files.size(), 1u);
  EXPECT_EQ(plan.files[0].name, "quant_model_weight_w8a8_dynamic.safetensors");
  EXPECT_EQ(plan.files[0].specs.size(), plan.outputs.size());
  EXPECT_TRUE(plan.index.empty());
  EXPECT_NE(plan.description.find("\"model_quant_type\": \"W8A8_DYNAMIC\""), std::string::npos);
  EXPECT_NE(plan.side_files.at("config.json").find("\"quantize\": \"w8a8_dynamic\""), std::string::npos);
}

TEST(QuantPlan, FloatGlobKeepsItsWholeFusedGroupFloatAndSaysWhy) {
  auto ckpt = open_model("llama-4m-fp16");
  QuantizeOptions o;
  o.float_globs = {"model.layers.0.self_attn.k_proj"};
  const QuantPlan plan = plan_of(*ckpt, o);
  EXPECT_EQ(plan.linears_float, 3u);
  EXPECT_EQ(plan.linears_quantized, 25u);
  const std::string glob = "--float 'model.layers.0.self_attn.k_proj'";
  EXPECT_EQ(planned(plan, "model.layers.0.self_attn.k_proj").why, glob);
  for (const char* member : {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj"}) {
    const PlannedLinear& p = planned(plan, member);
    EXPECT_EQ(p.scheme, LinearScheme::floating);
    EXPECT_EQ(p.why, "fused with model.layers.0.self_attn.k_proj (" + glob + ")");
  }
  EXPECT_EQ(planned(plan, "model.layers.0.self_attn.o_proj").scheme, LinearScheme::w8a8_dynamic);
  // The float weight is copied as it is, typed FLOAT.
  const PlannedLinear& k = planned(plan, "model.layers.0.self_attn.k_proj");
  bool copied = false;
  for (const auto& e : plan.outputs)
    if (e.spec.name == k.linear.weight_name()) copied = e.type == "FLOAT" && e.spec.dtype == DType::F16;
  EXPECT_TRUE(copied);

  o.float_globs = {"model.layers.9.*"};
  auto bad = plan_quantization(*ckpt, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::usage);
  EXPECT_NE(bad.error().message.find("matches no linear"), std::string::npos);
}

TEST(QuantPlan, DeepSeekRoutersStayFloatAndFallbackPicksSayWhy) {
  auto ckpt = open_model("deepseekv3-mla-6m-fp16");
  QuantizeOptions o;
  o.float_linears["model.layers.0.self_attn.q_b_proj"] = "fallback: input range/rms 9.0";
  const QuantPlan plan = plan_of(*ckpt, o);
  // Per layer 5 attention linears; layer 0 dense (3); layers 1-3 router, shared expert (3) and
  // 8 routed experts (24).
  ASSERT_EQ(plan.linears.size(), 4u * 5u + 3u + 3u * 28u);
  // Groups: attention q_a+kv_a, q_b, kv_b, o; dense gate_up, down; per MoE layer the router and
  // 9 experts' gate_up and down.
  EXPECT_EQ(groups_of(plan).size(), 4u * 4u + 2u + 3u * 19u);
  EXPECT_EQ(plan.linears_float, 8u);  // 3 routers, 4 kv_b_proj, the fallback pick
  EXPECT_EQ(count_scheme(plan, LinearScheme::floating), 8u);
  for (int layer = 1; layer <= 3; ++layer) {
    const PlannedLinear& r = planned(plan, "model.layers." + std::to_string(layer) + ".mlp.gate");
    EXPECT_EQ(r.scheme, LinearScheme::floating);
    EXPECT_EQ(r.why, "MoE router: float by default");
  }
  const PlannedLinear& kv_b = planned(plan, "model.layers.0.self_attn.kv_b_proj");
  EXPECT_EQ(kv_b.scheme, LinearScheme::floating);
  EXPECT_EQ(kv_b.why, "kv_b_proj: the MLA loaders need it float");
  const PlannedLinear& q_b = planned(plan, "model.layers.0.self_attn.q_b_proj");
  EXPECT_EQ(q_b.scheme, LinearScheme::floating);
  EXPECT_EQ(q_b.why, "fallback: input range/rms 9.0");
  const PlannedLinear& q_a = planned(plan, "model.layers.0.self_attn.q_a_proj");
  const PlannedLinear& kv_a = planned(plan, "model.layers.0.self_attn.kv_a_proj_with_mqa");
  EXPECT_EQ(q_a.linear.group, kv_a.linear.group);
  EXPECT_EQ(q_a.scheme, LinearScheme::w8a8_dynamic);

  o.float_linears = {{"model.layers.0.self_attn.nothing", "fallback"}};
  auto bad = plan_quantization(*ckpt, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().tensor, "model.layers.0.self_attn.nothing");
}

TEST(QuantPlan, StaticRoutedExpertWithoutStatisticsBorrowsItsLayersRange) {
  auto ckpt = open_model("deepseekv3-mla-6m-fp16");
  const std::string e3 = "model.layers.1.mlp.experts.3.";
  const std::string shared = "model.layers.1.mlp.shared_experts.";
  const ActivationStats stats = stats_for(*ckpt, {e3 + "gate_proj", e3 + "up_proj", e3 + "down_proj"},
                                          {{shared + "gate_proj", {-2, 3}},
                                           {shared + "up_proj", {-2, 3}},
                                           {"model.layers.1.mlp.experts.5.down_proj", {-4, 1}}});
  QuantizeOptions o;
  o.mode = W8A8Mode::w8a8_static;
  o.scheme_rules = {{"*", LinearScheme::w8a8, "--scheme '*=W8A8'"}};  // the experts static too
  o.stats = &stats;
  o.stats_path = "stats.safetensors";
  std::vector<std::string> warnings;
  o.warn = [&](const std::string& w) { warnings.push_back(w); };
  const QuantPlan plan = plan_of(*ckpt, o);
  EXPECT_EQ(plan.linears_quantized, 100u);
  EXPECT_EQ(count_scheme(plan, LinearScheme::w8a8), 100u);
  size_t borrowed = 0;
  for (const auto& p : plan.linears) borrowed += p.borrowed_range;
  EXPECT_EQ(borrowed, 3u);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings[0].rfind("72 routed-expert linears are static", 0), 0u);
  EXPECT_EQ(warnings[1].rfind("3 routed-expert linears have no statistics", 0), 0u);
  // gate/up take the shared expert's range, down_proj the union of the other experts'.
  const auto from_shared = w8a8::activation_params(-2, 3, DType::F16);
  const auto from_experts = w8a8::activation_params(-4, 1, DType::F16);
  ASSERT_TRUE(from_shared.ok() && from_experts.ok());
  EXPECT_TRUE(planned(plan, e3 + "gate_proj").borrowed_range);
  EXPECT_EQ(planned(plan, e3 + "gate_proj").act.scale, from_shared->scale);
  EXPECT_EQ(planned(plan, e3 + "up_proj").act.offset, from_shared->offset);
  EXPECT_EQ(planned(plan, e3 + "down_proj").act.scale, from_experts->scale);
  EXPECT_EQ(planned(plan, e3 + "down_proj").act.offset, from_experts->offset);
  // Static outputs: 7 tensors per quantized linear.
  size_t per_linear = 0;
  for (const auto& e : plan.outputs) per_linear += e.spec.name.rfind(e3 + "gate_proj.", 0) == 0;
  EXPECT_EQ(per_linear, 7u);

  // A linear with no statistics and nothing to borrow stops the plan, naming it.
  const ActivationStats missing = stats_for(*ckpt, {"model.layers.0.self_attn.o_proj"}, {});
  o.stats = &missing;
  auto bad = plan_quantization(*ckpt, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().tensor, "model.layers.0.self_attn.o_proj");
  EXPECT_EQ(bad.error().file, "stats.safetensors");
  o.stats = nullptr;
  EXPECT_FALSE(plan_quantization(*ckpt, o).ok());  // static without statistics
}

TEST(QuantPlan, MaxFileSizeSplitsTheWritesIntoIndexedFiles) {
  auto ckpt = open_model("llama-4m-fp16");
  QuantizeOptions o;
  o.max_file_size = 1 << 20;
  const QuantPlan plan = plan_of(*ckpt, o);
  ASSERT_GT(plan.files.size(), 1u);
  size_t specs = 0;
  for (const auto& f : plan.files) specs += f.specs.size();
  EXPECT_EQ(specs, plan.outputs.size());
  char last[64];
  std::snprintf(last, sizeof last, "quant_model_weight_w8a8_dynamic-%05zu-of-%05zu.safetensors", plan.files.size(),
                plan.files.size());
  EXPECT_EQ(plan.files.back().name, last);
  EXPECT_EQ(plan.index_name, "quant_model_weight_w8a8_dynamic.safetensors.index.json");
  EXPECT_NE(plan.index.find("\"total_size\": " + std::to_string(plan.output_bytes)), std::string::npos);
}

}  // namespace
}  // namespace st
