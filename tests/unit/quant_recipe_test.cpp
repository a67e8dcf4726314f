// Scheme rules and recipes: parsing, resolution on the fixture models, group checks and the
// checkpoint-level types of mixes.
#include "libst/quant/quant_recipe.hpp"

#include <gtest/gtest.h>

#include "libst/format/checkpoint.hpp"
#include "st_test_util.hpp"

namespace st {
namespace {

using st_test::open_arch;

SchemeRule rule(const std::string& text) {
  auto r = parse_scheme_rule(text, "--scheme '" + text + "'");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().str());
  return r.ok() ? *r : SchemeRule{};
}

std::string message(const Status& s) { return s.ok() ? "" : s.error().message; }

const ResolvedLinear& find(const SchemePlan& p, const std::string& prefix) {
  for (const auto& l : p.linears)
    if (l.info->prefix == prefix) return l;
  static ResolvedLinear none;
  ADD_FAILURE() << "no linear " << prefix;
  return none;
}

TEST(QuantRecipe, ParsesRules) {
  const SchemeRule r = rule("model.layers.*.mlp.*=w8a8_dynamic");
  EXPECT_EQ(r.glob, "model.layers.*.mlp.*");
  EXPECT_EQ(r.scheme, LinearScheme::w8a8_dynamic);
  EXPECT_EQ(rule("*=FLOAT").scheme, LinearScheme::floating);
  EXPECT_EQ(rule("a=b=W8A8").glob, "a=b");  // the last '=' splits
  auto bad = parse_scheme_rule("*=W4A8", "--scheme '*=W4A8'");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, Errc::usage);
  EXPECT_EQ(bad.error().message, "--scheme '*=W4A8': unknown scheme 'W4A8' (W8A8, W8A8_DYNAMIC, W8A8S or FLOAT)");
  EXPECT_FALSE(parse_scheme_rule("W8A8", "x").ok());
  EXPECT_FALSE(parse_scheme_rule("=W8A8", "x").ok());
}

TEST(QuantRecipe, ParsesRecipeFiles) {
  auto r = parse_recipe(R"({"rules": ["*.mlp.*=W8A8_DYNAMIC", "*=W8A8"], "fa_quant": true,
                            "anti_outlier": "none", "act_method": "minmax", "fallback": 2})",
                        "r.json");
  ASSERT_TRUE(r.ok()) << r.error().str();
  ASSERT_EQ(r->rules.size(), 2u);
  EXPECT_EQ(r->rules[1].scheme, LinearScheme::w8a8);
  EXPECT_EQ(r->rules[0].source, "recipe rule 1 '*.mlp.*=W8A8_DYNAMIC'");
  EXPECT_EQ(r->fa_quant, true);
  EXPECT_EQ(r->anti_outlier, "none");
  EXPECT_EQ(r->act_method, "minmax");
  EXPECT_EQ(r->fallback, 2);
  auto fa = parse_recipe(R"({"fa_quant": true, "fa_stat": "recall", "fa_fallback": 1})", "r.json");
  ASSERT_TRUE(fa.ok()) << fa.error().str();
  EXPECT_EQ(fa->fa_stat, "recall");
  EXPECT_EQ(fa->fa_fallback, 1);
  auto empty = parse_recipe("{}", "r.json");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->fa_quant.has_value());
  for (const char* text : {"[]", R"({"rule": []})", R"({"rules": "*=W8A8"})", R"({"rules": [1]})",
                           R"({"rules": ["*=W9"]})", R"({"fa_quant": 1})", R"({"fallback": -1})", "{",
                           R"({"rules": [], "rules": []})", R"({"fa_stat": "p99"})", R"({"fa_fallback": -2})"}) {
    auto e = parse_recipe(text, "r.json");
    ASSERT_FALSE(e.ok()) << text;
    EXPECT_EQ(e.error().file, "r.json") << text;
  }
  EXPECT_EQ(parse_recipe(R"({"rule": []})", "r.json").error().message,
            "unknown recipe key 'rule' (rules, fa_quant, fa_stat, fa_fallback, anti_outlier, act_method, fallback)");
}

TEST(QuantRecipe, DeepseekDefaultIsMsModelSlimsMix) {
  const Architecture a = open_arch("deepseekv3-mla-6m-fp16");
  auto p = resolve_schemes(a, SchemeInputs{}, "m");
  ASSERT_TRUE(p.ok()) << p.error().str();
  for (const auto& l : p->linears) {
    const std::string& n = l.info->prefix;
    LinearScheme want = LinearScheme::w8a8;
    if (l.info->role == LinearRole::kv_b || l.info->role == LinearRole::router) want = LinearScheme::floating;
    else if (n.find(".mlp.") != std::string::npos) want = LinearScheme::w8a8_dynamic;
    EXPECT_EQ(l.scheme, want) << n << ": " << l.why;
  }
  EXPECT_EQ(find(*p, "model.layers.0.self_attn.kv_b_proj").why, "kv_b_proj: the MLA loaders need it float");
  EXPECT_EQ(find(*p, "model.layers.0.self_attn.o_proj").why, "the mode's scheme (W8A8)");
  EXPECT_NE(find(*p, "model.layers.0.mlp.down_proj").why.find("msModelSlim's DeepSeek mix"), std::string::npos);
  EXPECT_TRUE(p->notes.empty());
  const CheckpointTypes t = checkpoint_types(a, p->by_prefix(), LinearScheme::w8a8, false);
  EXPECT_EQ(t.model_quant_type, "W8A8_DYNAMIC");
  EXPECT_EQ(t.quantize, "w8a8_dynamic");
  EXPECT_EQ(t.mla_quantize, "w8a8");
  EXPECT_EQ(t.moe_quantize, "");
}

TEST(QuantRecipe, DeepseekDynamicKeepsKvBFloat) {
  const Architecture a = open_arch("deepseekv3-mla-6m-fp16");
  SchemeInputs in;
  in.base = LinearScheme::w8a8_dynamic;
  auto p = resolve_schemes(a, in, "m");
  ASSERT_TRUE(p.ok()) << p.error().str();
  EXPECT_EQ(find(*p, "model.layers.2.self_attn.kv_b_proj").scheme, LinearScheme::floating);
  EXPECT_EQ(find(*p, "model.layers.2.self_attn.q_b_proj").scheme, LinearScheme::w8a8_dynamic);
  EXPECT_EQ(find(*p, "model.layers.2.mlp.experts.3.down_proj").scheme, LinearScheme::w8a8_dynamic);
  EXPECT_FALSE(p->any_static());
  const CheckpointTypes t = checkpoint_types(a, p->by_prefix(), in.base, false);
  EXPECT_EQ(t.model_quant_type, "W8A8_DYNAMIC");
  EXPECT_EQ(t.mla_quantize, "");
}

TEST(QuantRecipe, AllStaticRuleNotesStaticMoe) {
  const Architecture a = open_arch("deepseekv3-mla-6m-fp16");
  SchemeInputs in;
  in.rules = {rule("*=W8A8")};
  auto p = resolve_schemes(a, in, "m");
  ASSERT_TRUE(p.ok()) << p.error().str();
  EXPECT_EQ(find(*p, "model.layers.1.mlp.experts.0.gate_proj").scheme, LinearScheme::w8a8);
  EXPECT_EQ(find(*p, "model.layers.1.mlp.experts.0.gate_proj").why, "--scheme '*=W8A8'");
  EXPECT_EQ(find(*p, "model.layers.1.mlp.gate").scheme, LinearScheme::floating);
  EXPECT_EQ(find(*p, "model.layers.1.self_attn.kv_b_proj").scheme, LinearScheme::floating);
  ASSERT_EQ(p->notes.size(), 1u);
  EXPECT_EQ(p->notes[0],
            "72 routed-expert linears are static: vllm-ascend has no static W8A8 MoE scheme and cannot load them "
            "(MindIE can)");
  const CheckpointTypes t = checkpoint_types(a, p->by_prefix(), in.base, false);
  EXPECT_EQ(t.model_quant_type, "W8A8");
  EXPECT_EQ(t.mla_quantize, "");
}

TEST(QuantRecipe, FirstRuleWinsAndFloatTakesGroups) {
  const Architecture a = open_arch("llama-4m-fp16");
  SchemeInputs in;
  in.float_globs = {"*.layers.3.mlp.up_proj"};
  in.rules = {rule("*.mlp.*=W8A8_DYNAMIC"), rule("*.mlp.down_proj=FLOAT"), rule("*.layers.0.*=FLOAT")};
  auto p = resolve_schemes(a, in, "m");
  ASSERT_TRUE(p.ok()) << p.error().str();
  EXPECT_EQ(find(*p, "model.layers.0.mlp.down_proj").scheme, LinearScheme::w8a8_dynamic);
  EXPECT_EQ(find(*p, "model.layers.0.self_attn.q_proj").scheme, LinearScheme::floating);
  EXPECT_EQ(find(*p, "model.layers.1.self_attn.o_proj").scheme, LinearScheme::w8a8);
  EXPECT_EQ(find(*p, "model.layers.3.mlp.gate_proj").scheme, LinearScheme::floating);
  EXPECT_EQ(find(*p, "model.layers.3.mlp.up_proj").why, "--float '*.layers.3.mlp.up_proj'");
  EXPECT_EQ(find(*p, "model.layers.3.mlp.gate_proj").why,
            "fused with model.layers.3.mlp.up_proj (--float '*.layers.3.mlp.up_proj')");
  const CheckpointTypes t = checkpoint_types(a, p->by_prefix(), in.base, false);
  EXPECT_EQ(t.model_quant_type, "W8A8");  // msModelSlim's priority for a non-MLA mix
  EXPECT_EQ(t.mla_quantize, "");
}

TEST(QuantRecipe, BadRulesAreErrors) {
  const Architecture ds = open_arch("deepseekv3-mla-6m-fp16");
  auto resolve = [&](std::vector<std::string> rules, std::vector<std::string> floats = {}) {
    SchemeInputs in;
    for (const auto& r : rules) in.rules.push_back(rule(r));
    in.float_globs = floats;
    auto r = resolve_schemes(ds, in, "m");
    return r.ok() ? Status{} : Status(r.error());
  };
  EXPECT_EQ(message(resolve({"*.nothing=W8A8"})), "--scheme '*.nothing=W8A8' matches no linear");
  EXPECT_EQ(message(resolve({}, {"*.nothing"})), "--float '*.nothing' matches no linear");
  EXPECT_EQ(message(resolve({"*.kv_b_proj=W8A8"})),
            "--scheme '*.kv_b_proj=W8A8' matches only linears the loaders keep float");
  EXPECT_TRUE(resolve({"*.kv_b_proj=FLOAT"}).ok());
  const Status split = resolve({"*.q_a_proj=W8A8_DYNAMIC"});
  EXPECT_EQ(message(split),
            "fused group 'model.layers.0.self_attn:q_a+kv_a' split: model.layers.0.self_attn.q_a_proj is "
            "W8A8_DYNAMIC (--scheme '*.q_a_proj=W8A8_DYNAMIC'), model.layers.0.self_attn.kv_a_proj_with_mqa is "
            "W8A8 (the mode's scheme (W8A8)); linears sharing one input take one scheme");
  EXPECT_EQ(split.error().code, Errc::usage);
  EXPECT_EQ(split.error().file, "m");
}

}  // namespace
}  // namespace st
