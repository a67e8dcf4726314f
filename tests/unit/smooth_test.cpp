// Anti-outlier smoothing: the smoothed float model computes the same function (forward pass on
// the float checkpoint, before quantization); statistics follow the rescaled inputs; the
// activation-range estimate and the fallback ranking behave.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "libst/arch/architecture.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/model/calibrate.hpp"
#include "libst/model/model.hpp"
#include "libst/data/tokens.hpp"
#include "libst/quant/act_range.hpp"
#include "libst/quant/fallback.hpp"
#include "libst/quant/smooth.hpp"
#include "libst/quant/static_prep.hpp"
#include "libst/format/safetensors.hpp"

namespace st {
namespace {

namespace fs = std::filesystem;

// Writes every tensor of ck as F32 (the rewritten ones from `r`: its tensors, and the linear
// weights with its scales applied) with its config into dir.
void write_f32_model(const Checkpoint& ck, const Architecture& arch, const SmoothResult& r, const std::string& src_dir,
                     const std::string& dir) {
  const auto& over = r.tensors;
  fs::create_directories(dir);
  fs::copy_file(src_dir + "/config.json", dir + "/config.json", fs::copy_options::overwrite_existing);
  std::vector<TensorSpec> plan;
  for (const auto& e : ck.tensors()) plan.push_back({e.name(), DType::F32, e.info->shape});
  auto w = SafetensorsWriter::create(dir + "/model.safetensors", plan, {});
  ASSERT_TRUE(w) << w.error().message;
  for (const auto& e : ck.tensors()) {
    auto it = over.find(e.name());
    std::vector<float> v;
    if (it != over.end()) v = it->second;
    else {
      auto read = ck.read_f32(e);
      ASSERT_TRUE(read);
      v = std::move(*read);
      if (const LinearInfo* l = arch.linear_of_tensor(e.name()); l && e.name() == l->weight_name())
        apply_weight_scales(r.scales, l->prefix, l->out_features, l->in_features, v.data());
    }
    ASSERT_TRUE((*w)->write(e.name(), v.data(), v.size() * 4));
  }
  ASSERT_TRUE((*w)->finish());
}

void check_model(const std::string& name, bool search) {
  const std::string src = std::string(ST_FIXTURES) + "/" + name;
  auto ck = Checkpoint::open(src);
  ASSERT_TRUE(ck) << ck.error().message;
  auto arch = Architecture::of(**ck);
  ASSERT_TRUE(arch);
  auto model = model::Model::load(**ck);
  ASSERT_TRUE(model) << model.error().message;
  auto data = model::load_tokens(std::string(ST_FIXTURES) + "/data/calib_ids.jsonl", 64, 4);
  ASSERT_TRUE(data);
  auto stats = model::calibrate(**model, *data);
  ASSERT_TRUE(stats);
  ActivationStats smoothed = *stats;
  SmoothOptions so;
  so.search = search;
  auto r = smooth(**ck, *arch, smoothed, so);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_GT(r->pairs, 0u);

  // Some channel really was rescaled (else the test below could not fail).
  bool changed = false;
  for (const auto& [p, ls] : smoothed.linears) {
    const auto& orig = stats->linears.at(p);
    for (size_t j = 0; j < ls.absmax.size(); ++j) changed |= std::fabs(ls.absmax[j] - orig.absmax[j]) > 1e-3f * orig.absmax[j];
  }
  EXPECT_TRUE(changed);

  // Every smoothed linear's weight is rescaled (by columns), and only up_proj by rows.
  for (const auto& p : r->smoothed) EXPECT_TRUE(r->scales.column.count(p)) << p;
  EXPECT_FALSE(r->scales.row.empty());
  for (const auto& [p, v] : r->scales.row) EXPECT_NE(p.find("up_proj"), std::string::npos) << p;
  for (const auto& [name, v] : r->tensors) EXPECT_EQ(name.find("_proj.weight"), std::string::npos) << name;

  char tmpl[] = "/tmp/st-smooth-test.XXXXXX";
  ASSERT_TRUE(mkdtemp(tmpl));
  const std::string dir = tmpl;
  write_f32_model(**ck, *arch, *r, src, dir + "/m");
  auto ck2 = Checkpoint::open(dir + "/m");
  ASSERT_TRUE(ck2) << ck2.error().message;
  auto model2 = model::Model::load(**ck2);
  ASSERT_TRUE(model2) << model2.error().message;

  // Same logits on a calibration sequence (fp32 arithmetic; only rounding differs).
  const auto& seq = data->seqs[0];
  const int64_t n = int64_t(seq.size()), vocab = (*model)->config().vocab;
  std::vector<float> a(size_t(n * vocab)), b(a.size());
  (*model)->prepare(n);
  (*model2)->prepare(n);
  ASSERT_TRUE((*model)->forward(seq.data(), n, a.data(), nullptr));
  ASSERT_TRUE((*model2)->forward(seq.data(), n, b.data(), nullptr));
  double maxdiff = 0, maxabs = 0;
  for (size_t i = 0; i < a.size(); ++i) maxdiff = std::max<double>(maxdiff, std::fabs(a[i] - b[i])), maxabs = std::max<double>(maxabs, std::fabs(a[i]));
  EXPECT_LT(maxdiff, 1e-3 * maxabs) << name;

  // The rewritten statistics describe the smoothed model's inputs.
  auto stats2 = model::calibrate(**model2, *data);
  ASSERT_TRUE(stats2);
  for (const auto& p : r->smoothed) {
    const auto& want = smoothed.linears.at(p);
    const auto& got = stats2->linears.at(p);
    for (size_t j = 0; j < want.absmax.size(); ++j)
      ASSERT_NEAR(got.absmax[j], want.absmax[j], 1e-3 * (1 + want.absmax[j])) << p << " channel " << j;
    EXPECT_NEAR(got.max, want.max, 1e-3 * (1 + std::fabs(want.max))) << p;
    EXPECT_NEAR(got.min, want.min, 1e-3 * (1 + std::fabs(want.min))) << p;
  }
  fs::remove_all(dir);
}

TEST(Smooth, LlamaSameFunction) { check_model("llama-4m-fp16", false); }
TEST(Smooth, DeepSeekSearchSameFunction) { check_model("deepseekv3-mla-6m-fp16", true); }

TEST(Smooth, PairsFollowTheArchitecture) {
  auto names = [](const std::string& model, SmoothOptions o) {
    auto ck = Checkpoint::open(std::string(ST_FIXTURES) + "/" + model);
    EXPECT_TRUE(ck);
    auto arch = Architecture::of(**ck);
    EXPECT_TRUE(arch);
    std::vector<std::string> out;
    for (const auto& p : smoothing_pairs(*arch, o)) {
      std::string line = p.source + " ->";
      for (const auto* m : p.members) line += " " + m->prefix.substr(m->prefix.rfind('.') + 1);
      if (p.source_linear) line += " (rows of " + p.source_linear->prefix + ", bias " + p.source_bias + ")";
      out.push_back(line);
    }
    return out;
  };
  const auto llama = names("llama-4m-fp16", SmoothOptions{});
  ASSERT_EQ(llama.size(), 12u);  // per layer: input norm, post-attention norm, up -> down
  EXPECT_EQ(llama[0], "model.layers.0.input_layernorm.weight -> q_proj k_proj v_proj");
  EXPECT_EQ(llama[1], "model.layers.0.post_attention_layernorm.weight -> gate_proj up_proj");
  EXPECT_EQ(llama[2], "model.layers.0.mlp.up_proj.weight -> down_proj (rows of model.layers.0.mlp.up_proj, bias "
                      "model.layers.0.mlp.up_proj.bias)");
  EXPECT_EQ(llama[3], "model.layers.1.input_layernorm.weight -> q_proj k_proj v_proj");
  SmoothOptions norms_only;
  norms_only.up_down = false;
  EXPECT_EQ(names("llama-4m-fp16", norms_only).size(), 8u);
  // DeepSeek MLA: q_a/kv_a after the input norm, q_b after q_a_layernorm; never kv_b after
  // kv_a_layernorm (the loaders keep kv_b_proj float); MoE layers' post-attention norm also feeds
  // the router: only dense layer 0 smooths gate/up; every MLP (experts too) smooths up -> down.
  const auto ds = names("deepseekv3-mla-6m-fp16", SmoothOptions{});
  auto count = [&](const std::string& needle) {
    return std::count_if(ds.begin(), ds.end(), [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  };
  EXPECT_EQ(count("input_layernorm.weight -> q_a_proj kv_a_proj_with_mqa"), 4);
  EXPECT_EQ(count("q_a_layernorm.weight -> q_b_proj"), 4);
  EXPECT_EQ(count("kv_a_layernorm"), 0);
  EXPECT_EQ(count("post_attention_layernorm"), 1);
  EXPECT_EQ(count("-> down_proj"), 1 + 3 * (8 + 1));
}

TEST(Smooth, ScaleFormula) {
  EXPECT_FLOAT_EQ(smooth_scale(4.0f, 1.0f, 0.5f), 2.0f);
  EXPECT_FLOAT_EQ(smooth_scale(9.0f, 4.0f, 0.5f), 1.5f);
  EXPECT_FLOAT_EQ(smooth_scale(0.0f, 4.0f, 0.5f), 1.0f);   // dead channel untouched
  EXPECT_FLOAT_EQ(smooth_scale(1e12f, 1e-12f, 1.0f), 1e4f);  // clamped
}

TEST(ActRange, ClipsHeavyRangeKeepsTight) {
  LinearStats s;
  s.tokens = 1000;
  s.absmax = {100.0f, 1.0f};
  s.sumsq = {1000.0 * 1.0, 1000.0 * 0.25};  // rms 1 and 0.5: the max 100 is a rare outlier
  s.min = -100, s.max = 100;
  EXPECT_LT(act_range_error(s, 0.5f), act_range_error(s, 1.0f));
  ActivationStats st;
  st.linears["a"] = s;
  LinearStats t = s;
  t.absmax = {1.0f, 1.0f};
  t.sumsq = {1000.0, 1000.0};  // rms equal to the max: clipping only adds error
  t.min = -1, t.max = 1;
  st.linears["b"] = t;
  auto r = choose_act_ranges(st, ActMethod::mse);
  EXPECT_LT(r.clip["a"], 1.0f);
  EXPECT_EQ(r.clip["b"], 1.0f);
  EXPECT_LT(st.linears["a"].max, 100.0f);
  EXPECT_EQ(st.linears["b"].max, 1.0f);
  auto m = choose_act_ranges(st, ActMethod::minmax);
  EXPECT_EQ(m.clip["a"], 1.0f);
  ActivationStats st2;
  st2.linears["a"] = s;
  auto a = choose_act_ranges(st2, ActMethod::auto_, {"a"});  // smoothed: min/max kept
  EXPECT_EQ(a.clip["a"], 1.0f);
}

}  // namespace
}  // namespace st

namespace st {
namespace {

TEST(StaticPrep, ParsesTheMethodFlags) {
  StaticPrepOptions o;
  ASSERT_TRUE(parse_static_methods("smoothquant:0.7", "mse", o));
  EXPECT_TRUE(o.smooth);
  EXPECT_FALSE(o.smooth_options.up_down);
  EXPECT_FALSE(o.smooth_options.search);
  EXPECT_FLOAT_EQ(o.smooth_options.alpha, 0.7f);
  EXPECT_EQ(o.act, ActMethod::mse);
  ASSERT_TRUE(parse_static_methods("none", "minmax", o));
  EXPECT_FALSE(o.smooth);
  ASSERT_TRUE(parse_static_methods("search", "auto", o));
  EXPECT_TRUE(o.smooth && o.smooth_options.search && o.smooth_options.up_down);
  for (const char* bad : {"smoothquant:2", "smoothquant:", "none:0.5", "search:0.3", "median"}) {
    auto s = parse_static_methods(bad, "auto", o);
    ASSERT_FALSE(s) << bad;
    EXPECT_EQ(s.error().code, Errc::usage) << bad;
  }
  EXPECT_FALSE(parse_static_methods("none", "percentile", o));
}

}  // namespace
}  // namespace st
