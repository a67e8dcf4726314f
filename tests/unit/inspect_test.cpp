// libst/inspect: statistics (exact values, thread-count independence), listings, diffs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "libst/inspect/inspect.hpp"
#include "st_test_util.hpp"

namespace {

using st::DType;

std::string fixture(const std::string& name) { return st_test::fixtures() + "/" + name; }

template <class T>
const uint8_t* bytes_of(const std::vector<T>& v) {
  return reinterpret_cast<const uint8_t*>(v.data());
}

TEST(InspectStats, ExactValuesWithNanInfAndZeros) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {1, -3, 0, 2, std::nanf(""), inf, 0, -inf};
  auto s = st::compute_stats(DType::F32, bytes_of(x), x.size());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->count, 8u);
  EXPECT_EQ(s->finite, 5u);
  EXPECT_EQ(s->nans, 1u);
  EXPECT_EQ(s->infs, 2u);
  EXPECT_EQ(s->zeros, 2u);
  EXPECT_DOUBLE_EQ(s->zero_fraction(), 0.25);
  EXPECT_DOUBLE_EQ(s->min, -3);
  EXPECT_DOUBLE_EQ(s->max, 2);
  EXPECT_DOUBLE_EQ(s->absmax, 3);
  EXPECT_DOUBLE_EQ(s->mean, 0);
  EXPECT_DOUBLE_EQ(s->std, std::sqrt((1 + 9 + 0 + 4 + 0) / 5.0));
}

TEST(InspectStats, IntegerAndHalfDtypes) {
  const std::vector<int8_t> i8 = {-128, 127, 0, 1};
  auto a = st::compute_stats(DType::I8, bytes_of(i8), i8.size());
  ASSERT_TRUE(a);
  EXPECT_EQ(a->min, -128);
  EXPECT_EQ(a->max, 127);
  EXPECT_EQ(a->absmax, 128);
  EXPECT_EQ(a->zeros, 1u);
  const std::vector<int64_t> i64 = {int64_t{1} << 40, -(int64_t{1} << 40)};
  auto b = st::compute_stats(DType::I64, bytes_of(i64), i64.size());
  ASSERT_TRUE(b);
  EXPECT_EQ(b->max, std::ldexp(1.0, 40));
  EXPECT_EQ(b->mean, 0);
  const std::vector<uint16_t> h = {st::f32_to_f16(0.5f), st::f32_to_f16(-1.5f), 0x7e00 /* NaN */};
  auto c = st::compute_stats(DType::F16, bytes_of(h), h.size());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->min, -1.5);
  EXPECT_EQ(c->max, 0.5);
  EXPECT_EQ(c->nans, 1u);
  const std::vector<uint16_t> bf = {st::f32_to_bf16(2.0f), st::f32_to_bf16(4.0f)};
  auto d = st::compute_stats(DType::BF16, bytes_of(bf), bf.size());
  ASSERT_TRUE(d);
  EXPECT_EQ(d->mean, 3);
  EXPECT_EQ(d->std, 1);
}

TEST(InspectStats, EmptyAndUnsupported) {
  auto e = st::compute_stats(DType::F32, nullptr, 0);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->count, 0u);
  EXPECT_TRUE(std::isnan(e->mean));
  EXPECT_EQ(e->zero_fraction(), 0);
  const uint8_t b = 0;
  EXPECT_FALSE(st::compute_stats(DType::F8_E4M3, &b, 1));
  EXPECT_FALSE(st::stats_supported(DType::C64));
  EXPECT_TRUE(st::stats_supported(DType::BOOL));
}

TEST(InspectStats, IndependentOfThreadCountAndMatchesTwoPassReference) {
  const size_t n = 1'000'003;  // many chunks, ragged end
  std::vector<float> x(n);
  uint32_t r = 12345;
  for (auto& v : x) {
    r = r * 1664525u + 1013904223u;
    v = 100.0f + static_cast<float>(r >> 8) / static_cast<float>(1 << 24);  // large mean, small spread
  }
  auto with = [&](int threads) {
    st_test::ThreadCount t(threads);
    return st::compute_stats(DType::F32, bytes_of(x), n);
  };
  auto one = with(1);
  auto many = with(7);
  ASSERT_TRUE(one);
  ASSERT_TRUE(many);
  EXPECT_EQ(std::memcmp(&one->mean, &many->mean, sizeof(double)), 0);
  EXPECT_EQ(std::memcmp(&one->std, &many->std, sizeof(double)), 0);
  long double sum = 0;
  for (float v : x) sum += v;
  const long double mean = sum / n;
  long double m2 = 0;
  for (float v : x) m2 += (v - mean) * (v - mean);
  EXPECT_NEAR(one->mean, static_cast<double>(mean), 1e-9);
  EXPECT_NEAR(one->std, std::sqrt(static_cast<double>(m2 / n)), 1e-9);
}

TEST(Inspect, ListsTheFixtureWithSummary) {
  auto c = st::Checkpoint::open(fixture("llama-4m-fp16"));
  ASSERT_TRUE(c);
  st::InspectOptions o;
  auto inv = st::inspect(**c, o);
  ASSERT_TRUE(inv) << inv.error().str();
  ASSERT_EQ(inv->sections.size(), 1u);
  EXPECT_EQ(inv->layout, "hf");
  EXPECT_EQ(inv->total.tensors, 39u);
  EXPECT_EQ(inv->total.by_dtype.at("F16").tensors, 39u);
  uint64_t bytes = 0;
  for (const auto& r : inv->sections[0].tensors) {
    bytes += r.bytes;
    EXPECT_FALSE(r.stats);
  }
  EXPECT_EQ(inv->total.bytes, bytes);
  const auto j = st::inventory_json(*inv);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"path", "layout", "files", "tensors", "summary"}));
  EXPECT_EQ(j["tensors"][0]["bytes"].type(), nlohmann::ordered_json::value_t::number_unsigned);
}

TEST(Inspect, FilterAndStats) {
  auto c = st::Checkpoint::open(fixture("llama-4m-fp16"));
  ASSERT_TRUE(c);
  st::InspectOptions o;
  o.filter = "*layers.1.*norm*";  // a glob on the whole name
  o.stats = true;
  st_test::ThreadCount threads(2);
  auto inv = st::inspect(**c, o);
  ASSERT_TRUE(inv) << inv.error().str();
  ASSERT_EQ(inv->sections[0].tensors.size(), 2u);
  for (const auto& r : inv->sections[0].tensors) {
    ASSERT_TRUE(r.stats) << r.name;
    auto w = (*c)->read_f32(r.name);
    ASSERT_TRUE(w);
    double mx = -1e30;
    for (float v : *w) mx = std::max(mx, double(v));
    EXPECT_EQ(r.stats->max, mx);
  }
  o.filter = "layers.1";  // whole names: no substring search
  auto none = st::inspect(**c, o);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->sections[0].tensors.empty());
}

TEST(InspectDiff, EqualToItselfAndDtypeChangesAgainstBf16) {
  auto a = st::Checkpoint::open(fixture("llama-4m-fp16"));
  auto a2 = st::Checkpoint::open(fixture("llama-4m-fp16/model.safetensors"));
  auto b = st::Checkpoint::open(fixture("llama-4m-bf16"));
  ASSERT_TRUE(a && a2 && b);
  st::DiffOptions o;
  o.values = true;
  auto same = st::diff_checkpoints(**a, **a2, o);
  ASSERT_TRUE(same);
  EXPECT_TRUE(same->equal());
  EXPECT_EQ(same->values.size(), 39u);
  auto d = st::diff_checkpoints(**a, **b, o);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->equal());
  EXPECT_EQ(d->changed.size(), 39u);
  for (const auto& c : d->changed) {
    EXPECT_EQ(c.dtype_a, DType::F16);
    EXPECT_EQ(c.dtype_b, DType::BF16);
    EXPECT_EQ(c.shape_a, c.shape_b);
  }
  for (const auto& v : d->values) {
    EXPECT_TRUE(v.comparable);
    EXPECT_FALSE(v.identical);
    EXPECT_GT(v.cosine, 0.99) << v.name;
  }
  const std::string text = st::format_diff(*d);
  EXPECT_NE(text.find("dtype: model.norm.weight: F16 -> BF16\n"), std::string::npos);
}

TEST(InspectDiff, OnlyInOneSideAndValueChanges) {
  st_test::TempDir dir;
  const std::vector<float> x = {1, 2, 3, 4}, y = {1, 2, 3, 5};
  auto raw = [](const std::vector<float>& v) {
    return std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(v.data()),
                                reinterpret_cast<const uint8_t*>(v.data()) + v.size() * 4);
  };
  st_test::write_tensors(dir / "a.safetensors", {{"w", DType::F32, {4}, raw(x)}, {"gone", DType::U8, {1}, {1}}});
  st_test::write_tensors(dir / "b.safetensors", {{"w", DType::F32, {2, 2}, raw(y)}, {"new", DType::U8, {1}, {1}}});
  auto a = st::Checkpoint::open(dir / "a.safetensors");
  auto b = st::Checkpoint::open(dir / "b.safetensors");
  ASSERT_TRUE(a && b);
  st::DiffOptions o;
  o.values = true;
  auto d = st::diff_checkpoints(**a, **b, o);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->only_a, std::vector<std::string>{"gone"});
  EXPECT_EQ(d->only_b, std::vector<std::string>{"new"});
  ASSERT_EQ(d->changed.size(), 1u);
  EXPECT_EQ(d->changed[0].shape_b, (std::vector<int64_t>{2, 2}));
  ASSERT_EQ(d->values.size(), 1u);
  EXPECT_TRUE(d->values[0].comparable);  // same element count
  EXPECT_DOUBLE_EQ(d->values[0].max_abs_diff, 1.0);
  EXPECT_NEAR(d->values[0].cosine, (1 + 4 + 9 + 20) / std::sqrt(30.0 * 39.0), 1e-12);
  const auto j = st::diff_json(*d);
  EXPECT_EQ(j["equal"], false);
  EXPECT_EQ(j["only_a"][0], "gone");
}

TEST(InspectDiff, Descriptions) {
  auto a = st::Description::parse(R"({"model_quant_type": "W8A8", "x.weight": "W8A8", "y.weight": "FLOAT"})");
  auto b = st::Description::parse(R"({"model_quant_type": "W8A8_DYNAMIC", "x.weight": "FLOAT", "z.weight": "FLOAT"})");
  ASSERT_TRUE(a && b);
  auto d = st::diff_descriptions(*a, *b, "");
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->equal());
  EXPECT_EQ(d->only_a, std::vector<std::string>{"y.weight"});
  EXPECT_EQ(d->only_b, std::vector<std::string>{"z.weight"});
  ASSERT_EQ(d->changed_type.size(), 1u);
  ASSERT_EQ(d->changed_top.size(), 1u);
  const std::string text = st::format_diff(*d);
  EXPECT_NE(text.find("type: x.weight: W8A8 -> FLOAT\n"), std::string::npos) << text;
  EXPECT_NE(text.find("description: model_quant_type: W8A8 -> W8A8_DYNAMIC\n"), std::string::npos) << text;
  auto same = st::diff_descriptions(*a, *a, "");
  ASSERT_TRUE(same);
  EXPECT_TRUE(same->equal());
  EXPECT_EQ(st::format_diff(*same), "equal\n");
}

}  // namespace
