// FA3 calibration and attention scales: the recall window st-calibrate records (msModelSlim's
// statistic), the statistic each scale comes from, and the blocks --fa-fallback keeps float.
#include "libst/quant/attention_scales.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "libst/format/checkpoint.hpp"
#include "libst/model/calibrate.hpp"
#include "st_test_util.hpp"

namespace st {
namespace {

// One head, 20000 values: 0.5 * (i % 7 - 3) but two outliers, +40 and -9. int(0.9999 * 20000)
// = 19998 values fit in a window: the shortest leaves out both outliers, [-1.5, 1.5].
TEST(FaRecall, LeavesOutTheOutliersAWindowNeedNotHold) {
  std::vector<float> x(20000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * float(int(i % 7) - 3);
  x[123] = 40.f, x[4567] = -9.f;
  model::StatsCollector c;
  c.on_attention("a", "k", x.data(), 1, 1, int64_t(x.size()));
  const auto& e = c.stats().extra;
  EXPECT_EQ(e.at("a.k_absmax"), std::vector<float>{40.f});
  EXPECT_EQ(e.at("a.k_recall"), std::vector<float>{1.5f});
  double sq = 0;
  for (float v : x) sq += double(v) * v;
  EXPECT_NEAR(e.at("a.k_rms")[0], std::sqrt(sq / double(x.size())), 1e-5);
  // One outlier more than the window may leave out: the window holds the smaller one.
  x[9999] = 35.f;
  model::StatsCollector d;
  d.on_attention("a", "k", x.data(), 1, 1, int64_t(x.size()));
  EXPECT_EQ(d.stats().extra.at("a.k_recall"), std::vector<float>{9.f});
  // v is not clipped (msModelSlim's ratio for v is 1): no recall statistic.
  d.on_attention("a", "v", x.data(), 1, 1, int64_t(x.size()));
  EXPECT_FALSE(d.stats().extra.count("a.v_recall"));
  EXPECT_TRUE(d.stats().extra.count("a.v_rms"));
}

// The statistics of llama-4m's attention blocks: every head absmax 127 (scale 1), recall 63.5
// (scale 0.5), rms 1, except layer 2's k, whose rms is 0.1: its int8 noise is the largest.
ActivationStats llama_stats(const Architecture& arch) {
  ActivationStats s;
  for (const auto& a : arch.attention()) {
    for (const char* w : {"q", "k", "v"}) {
      const int64_t n = std::string(w) == "q" ? a.heads : a.kv_heads;
      s.extra[a.prefix + "." + w + "_absmax"].assign(size_t(n), 127.f);
      if (std::string(w) != "v") s.extra[a.prefix + "." + w + "_recall"].assign(size_t(n), 63.5f);
      s.extra[a.prefix + "." + w + "_rms"].assign(size_t(n), a.prefix == "model.layers.2.self_attn" && w[0] == 'k' ? 0.1f : 1.f);
    }
  }
  return s;
}

float scale_of(const AttentionScales& s, const std::string& name) {
  for (const auto& t : s.tensors)
    if (t.spec.name == name) {
      EXPECT_EQ(t.spec.dtype, DType::F16);
      return f16_to_f32(uint16_t(t.bytes[0] | t.bytes[1] << 8));
    }
  ADD_FAILURE() << "no " << name;
  return 0;
}

TEST(FaScales, RecallForQAndKAbsmaxForVAndTheWorstBlocksFloat) {
  auto ck = Checkpoint::open(st_test::fixtures() + "/llama-4m-fp16");
  ASSERT_TRUE(ck.ok());
  auto arch = Architecture::of(**ck);
  ASSERT_TRUE(arch.ok());
  const ActivationStats stats = llama_stats(*arch);
  auto r = attention_scales(*arch, stats, "s.st", FaStat::recall);
  ASSERT_TRUE(r.ok()) << r.error().str();
  EXPECT_EQ(r->tensors.size(), 4u * 6);
  EXPECT_EQ(scale_of(*r, "model.layers.0.self_attn.fa_q.scale"), 0.5f);
  EXPECT_EQ(scale_of(*r, "model.layers.0.self_attn.fa_k.scale"), 0.5f);
  EXPECT_EQ(scale_of(*r, "model.layers.0.self_attn.fa_v.scale"), 1.f);
  auto a = attention_scales(*arch, stats, "s.st");  // the default: absmax
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(scale_of(*a, "model.layers.0.self_attn.fa_q.scale"), 1.f);
  // Fallback 1: layer 2 (its k noise/signal 100x the others'), no tensor of it written.
  auto f = attention_scales(*arch, stats, "s.st", FaStat::recall, 1);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->rolled_back(), std::vector<std::string>{"model.layers.2.self_attn"});
  EXPECT_EQ(f->tensors.size(), 3u * 6);
  for (const auto& t : f->tensors) EXPECT_EQ(t.spec.name.find("layers.2."), std::string::npos) << t.spec.name;
  EXPECT_EQ(fallback_note(f->blocks[2]).rfind("fa-fallback: model.layers.2.self_attn kept float", 0), 0u);
  // More than the blocks: all of them.
  auto all = attention_scales(*arch, stats, "s.st", FaStat::recall, 9);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->rolled_back().size(), 4u);
  EXPECT_TRUE(all->tensors.empty());
}

TEST(FaScales, MissingRecallStatisticNamesTheWayOut) {
  auto ck = Checkpoint::open(st_test::fixtures() + "/llama-4m-fp16");
  ASSERT_TRUE(ck.ok());
  auto arch = Architecture::of(**ck);
  ASSERT_TRUE(arch.ok());
  ActivationStats stats = llama_stats(*arch);
  stats.extra.erase("model.layers.1.self_attn.k_recall");
  auto r = attention_scales(*arch, stats, "s.st", FaStat::recall);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().tensor, "model.layers.1.self_attn.k_recall");
  EXPECT_NE(r.error().message.find("--fa-stat absmax"), std::string::npos) << r.error().message;
  EXPECT_TRUE(attention_scales(*arch, stats, "s.st", FaStat::absmax).ok());  // absmax needs no recall
  stats.extra.erase("model.layers.3.self_attn.v_rms");
  EXPECT_FALSE(attention_scales(*arch, stats, "s.st", FaStat::absmax, 1).ok());  // the fallback needs rms
}

}  // namespace
}  // namespace st
