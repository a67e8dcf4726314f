// Folding statistics and merging the parts of one calibration run: --part parsing, the slices
// select_part cuts, and the checks merge_stats_parts makes on a set of part files.
#include <gtest/gtest.h>

#include "libst/data/tokens.hpp"
#include "libst/format/stats_merge.hpp"
#include "st_test_util.hpp"

namespace {

using st::ActivationStats;
using st::LinearStats;

LinearStats linear(float lo, float hi, std::vector<float> absmax, int64_t tokens) {
  LinearStats s;
  s.min = lo, s.max = hi, s.absmax = absmax, s.tokens = tokens;
  for (float a : absmax) s.sumsq.push_back(double(a) * a), s.chmin.push_back(-a), s.chmax.push_back(a);
  return s;
}

TEST(StatsMerge, PartSyntax) {
  auto p = st::parse_stats_part("2/8");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->index, 2);
  EXPECT_EQ(p->count, 8);
  EXPECT_EQ(st::stats_part_text(*p), "2/8");
  for (const char* bad : {"0/3", "4/3", "1/0", "3", "/3", "1/", "1/2/3", "-1/3", "a/b", "1/99999999999999999999", ""})
    EXPECT_FALSE(st::parse_stats_part(bad)) << bad;
}

TEST(StatsMerge, PartsCutContiguousSlicesOfTheSameSequences) {
  st::model::TokenData whole;
  for (int32_t i = 0; i < 10; ++i) whole.seqs.push_back({i, i + 1});
  std::vector<std::vector<int32_t>> joined;
  for (int64_t i = 1; i <= 3; ++i) {
    auto part = whole;
    ASSERT_TRUE(st::model::select_part(part, {i, 3}));
    EXPECT_EQ(part.seqs.size(), i == 3 ? 4u : 3u);
    EXPECT_EQ(part.first, (i - 1) * 10 / 3);
    EXPECT_EQ(part.whole_sequences, 10);
    auto first = whole;
    ASSERT_TRUE(st::model::select_part(first, {1, 3}));
    EXPECT_EQ(part.whole_ids_hash, first.whole_ids_hash);
    joined.insert(joined.end(), part.seqs.begin(), part.seqs.end());
  }
  EXPECT_EQ(joined, whole.seqs);
  auto other = whole;
  other.seqs[9][1] = 0;
  auto a = whole, b = other;
  ASSERT_TRUE(st::model::select_part(a, {1, 2}));
  ASSERT_TRUE(st::model::select_part(b, {1, 2}));
  EXPECT_NE(a.whole_ids_hash, b.whole_ids_hash);  // the hash covers sequences outside the part
  auto tiny = whole;
  EXPECT_FALSE(st::model::select_part(tiny, {1, 11}));
}

TEST(StatsMerge, FoldsRangesExactlyAndTakesTheUnion) {
  ActivationStats a, b;
  a.linears["x"] = linear(-1, 2, {1, 0.5f}, 3);
  b.linears["x"] = linear(-3, 1, {0.25f, 4}, 5);
  b.linears["only_b"] = linear(0, 1, {1}, 1);
  a.extra["attn.q_absmax"] = {1, 5};
  b.extra["attn.q_absmax"] = {2, 3};
  a.extra_shapes["attn.q_absmax"] = b.extra_shapes["attn.q_absmax"] = {2};
  ASSERT_TRUE(st::merge_stats(a, std::move(b)));
  const LinearStats& x = a.linears.at("x");
  EXPECT_EQ(x.min, -3);
  EXPECT_EQ(x.max, 2);
  EXPECT_EQ(x.absmax, (std::vector<float>{1, 4}));
  EXPECT_EQ(x.sumsq, (std::vector<double>{1 + 0.0625, 0.25 + 16}));
  EXPECT_EQ(x.chmin, (std::vector<float>{-1, -4}));
  EXPECT_EQ(x.tokens, 8);
  EXPECT_EQ(a.linears.count("only_b"), 1u);
  EXPECT_EQ(a.extra.at("attn.q_absmax"), (std::vector<float>{2, 5}));

  ActivationStats c;
  c.linears["x"] = linear(0, 1, {1, 1, 1}, 1);
  auto e = st::merge_stats(a, std::move(c), "c.st");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().file, "c.st");
  EXPECT_EQ(e.error().tensor, "x");
}

// Writes part i/n of a split of `sequences` sequences, holding one linear.
std::string write_part(const st_test::TempDir& d, int64_t i, int64_t n, const std::string& ids = "00000000000000aa",
                       int64_t samples = 2) {
  ActivationStats s;
  s.linears["model.layers.0.mlp.down_proj"] = linear(-float(i), float(i), {float(i)}, samples * 4);
  s.metadata = {{"st.stats.samples", std::to_string(samples)}, {"st.stats.seq_len", std::to_string(4 + i)},
                {"st.stats.model", "/host" + std::to_string(i) + "/m"}, {st::kStatsPartKey, st::stats_part_text({i, n})},
                {st::kStatsPartSequencesKey, std::to_string(2 * n)}, {st::kStatsPartIdsKey, ids},
                {"st.stats.data_xxh3", "00000000000000bb"}};
  const std::string path = d / ("p" + std::to_string(i) + "of" + std::to_string(n) + ids.substr(14) + ".st");
  EXPECT_TRUE(st::save_stats(s, path));
  return path;
}

TEST(StatsMerge, PartsMergeIntoOneRun) {
  st_test::TempDir d;
  const auto p1 = write_part(d, 1, 3), p2 = write_part(d, 2, 3), p3 = write_part(d, 3, 3);
  auto m = st::merge_stats_parts({p3, p1, p2});
  ASSERT_TRUE(m) << m.error().str();
  const LinearStats& x = m->linears.at("model.layers.0.mlp.down_proj");
  EXPECT_EQ(x.min, -3);
  EXPECT_EQ(x.max, 3);
  EXPECT_EQ(x.tokens, 24);
  EXPECT_EQ(x.sumsq, (std::vector<double>{1 + 4 + 9}));
  EXPECT_EQ(m->metadata.at("st.stats.samples"), "6");
  EXPECT_EQ(m->metadata.at("st.stats.seq_len"), "7");
  EXPECT_EQ(m->metadata.at("st.stats.model"), "/host1/m");  // part 1's paths
  EXPECT_EQ(m->metadata.count(st::kStatsPartKey) + m->metadata.count(st::kStatsPartIdsKey) +
                m->metadata.count(st::kStatsPartSequencesKey),
            0u);

  auto refused = [](const std::vector<std::string>& paths, const std::string& file, const std::string& why) {
    auto r = st::merge_stats_parts(paths);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().file, file);
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
  };
  refused({p1, p3}, "", "part 2/3 is missing");
  refused({p1, p2, p2, p3}, p2, "given twice");
  refused({p1, p2, write_part(d, 3, 4)}, d / "p3of4aa.st", "another split");
  refused({p1, write_part(d, 2, 3, "00000000000000cc"), p3}, d / "p2of3cc.st", "st.stats.part_ids_xxh3");
  refused({}, "", "no statistics files");
  ActivationStats whole;
  whole.linears["model.layers.0.mlp.down_proj"] = linear(-1, 1, {1}, 1);
  ASSERT_TRUE(st::save_stats(whole, d / "whole.st"));
  refused({p1, d / "whole.st"}, d / "whole.st", "not the statistics of a part");
}

}  // namespace
