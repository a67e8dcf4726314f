// Block-scaled FP8 (libst/format/fp8.hpp): the F8 conversions against the formats' definitions,
// dequantization with blocks cut short by the edges, the checkpoint's pairing and its refusals,
// and a tensor-parallel split whose parts decode to the rows of the whole weight.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>

#include "libst/format/checkpoint.hpp"
#include "libst/format/fp8.hpp"
#include "libst/shard/shard.hpp"
#include "st_test_util.hpp"

namespace st {
namespace {

using st_test::TempDir;
using st_test::TestTensor;

// The formats' definitions, written out: sign, exponent, mantissa.
double e4m3_reference(unsigned b) {
  const double sign = (b & 0x80) ? -1 : 1;
  const int e = (b >> 3) & 15, m = b & 7;
  if (e == 15 && m == 7) return NAN;
  return sign * (e == 0 ? std::ldexp(m / 8.0, -6) : std::ldexp(1 + m / 8.0, e - 7));
}
double e5m2_reference(unsigned b) {
  const double sign = (b & 0x80) ? -1 : 1;
  const int e = (b >> 2) & 31, m = b & 3;
  if (e == 31) return m ? NAN : sign * INFINITY;
  return sign * (e == 0 ? std::ldexp(m / 4.0, -14) : std::ldexp(1 + m / 4.0, e - 15));
}

TEST(Fp8, EveryByteConvertsExactly) {
  for (unsigned b = 0; b < 256; ++b) {
    const double a = e4m3_reference(b), c = e5m2_reference(b);
    const float x = f8_e4m3_to_f32(uint8_t(b)), y = f8_e5m2_to_f32(uint8_t(b));
    if (std::isnan(a)) EXPECT_TRUE(std::isnan(x)) << b;
    else EXPECT_EQ(double(x), a) << b;
    if (std::isnan(c)) EXPECT_TRUE(std::isnan(y)) << b;
    else EXPECT_EQ(double(y), c) << b;
  }
  EXPECT_EQ(f8_e4m3_to_f32(0x7e), 448.0f);
  EXPECT_TRUE(std::signbit(f8_e4m3_to_f32(0x80)));
}

// Bytes of a weight [n, k] (a pattern, no NaN) and its scales in 128x128 blocks.
std::vector<uint8_t> fp8_bytes(int64_t n, int64_t k, uint32_t seed) {
  auto b = st_test::pattern(size_t(n * k), seed);
  for (auto& x : b)
    if ((x & 0x7f) == 0x7f) x = 0x11;
  return b;
}
std::vector<float> scales(int64_t n, int64_t k, float base) {
  const auto shape = block_scale_shape({n, k});
  std::vector<float> s(size_t(shape[0] * shape[1]));
  for (size_t i = 0; i < s.size(); ++i) s[i] = base * float(i + 1) / 7.0f;
  return s;
}
std::vector<uint8_t> as_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

TEST(Fp8, BlocksCutShortByTheEdgesUseTheirBlocksScale) {
  const int64_t n = 130, k = 260;  // 2 x 3 blocks, the last ones 2 rows and 4 columns wide
  const auto w = fp8_bytes(n, k, 7);
  const auto s = scales(n, k, 0.01f);
  const FloatDecoder d = FloatDecoder::block_fp8(DType::F8_E4M3, n, k, s, DType::BF16);
  const auto all = d.all(w.data());
  for (int64_t r : {int64_t(0), int64_t(127), int64_t(128), int64_t(129)})
    for (int64_t c : {int64_t(0), int64_t(127), int64_t(128), int64_t(255), int64_t(256), int64_t(259)}) {
      const float product = f8_e4m3_to_f32(w[size_t(r * k + c)]) * s[size_t((r / 128) * 3 + c / 128)];
      EXPECT_EQ(all[size_t(r * k + c)], bf16_to_f32(f32_to_bf16(product))) << r << "," << c;
      const auto exact = d.rounding_to(DType::F32).all(w.data());
      EXPECT_EQ(exact[size_t(r * k + c)], product);
    }
  std::vector<float> rows(size_t(3 * k));
  d.rows(w.data(), 127, 130, rows.data());
  EXPECT_EQ(0, std::memcmp(rows.data(), all.data() + 127 * k, rows.size() * 4));
}

// A tile is the same values as the whole weight there, across block edges and for a plain dtype.
TEST(Fp8, TilesMatchTheWholeWeight) {
  const int64_t n = 130, k = 260;
  const auto w = fp8_bytes(n, k, 11);
  const FloatDecoder fp8 = FloatDecoder::block_fp8(DType::F8_E5M2, n, k, scales(n, k, 0.02f), DType::F16);
  std::vector<uint16_t> h(size_t(n * k));
  for (size_t i = 0; i < h.size(); ++i) h[i] = f32_to_bf16(float(int(i % 977) - 488) / 64.0f);
  auto plain = FloatDecoder::plain(DType::BF16, {n, k});
  ASSERT_TRUE(plain);
  for (const auto& [d, bytes] : {std::pair<const FloatDecoder*, const uint8_t*>{&fp8, w.data()},
                                 {&*plain, reinterpret_cast<const uint8_t*>(h.data())}}) {
    const auto all = d->all(bytes);
    for (auto [r0, r1, c0, c1] : {std::array<int64_t, 4>{0, 130, 0, 260}, {127, 129, 100, 131}, {5, 6, 255, 260},
                                  {128, 130, 0, 1}, {3, 9, 128, 256}}) {
      std::vector<float> t(size_t((r1 - r0) * (c1 - c0)));
      d->tile(bytes, r0, r1, c0, c1, t.data());
      for (int64_t r = r0; r < r1; ++r)
        EXPECT_EQ(0, std::memcmp(t.data() + (r - r0) * (c1 - c0), all.data() + r * k + c0, size_t(c1 - c0) * 4))
            << r << " [" << c0 << ", " << c1 << ")";
    }
  }
}

class Fp8Checkpoint : public ::testing::Test {
 protected:
  // A file with one block-scaled weight [130, 260] (scales written first, as DeepSeek's files have
  // them) and a BF16 norm.
  std::string write(const std::vector<TestTensor>& extra = {}, bool with_scale = true) {
    std::vector<TestTensor> t;
    if (with_scale) t.push_back({"w.weight_scale_inv", DType::F32, {2, 3}, as_bytes(scales(130, 260, 0.01f))});
    t.push_back({"w.weight", DType::F8_E4M3, {130, 260}, fp8_bytes(130, 260, 3)});
    t.push_back({"norm.weight", DType::BF16, {4}, std::vector<uint8_t>(8, 0x3f)});
    t.insert(t.end(), extra.begin(), extra.end());
    const std::string path = dir_ / "m.safetensors";
    st_test::write_tensors(path, t);
    return path;
  }
  TempDir dir_;
};

TEST_F(Fp8Checkpoint, PairsAWeightWithItsScalesAndReadsItAsItsModelDtype) {
  auto ck = Checkpoint::open(write());
  ASSERT_TRUE(ck) << ck.error().str();
  const TensorEntry* w = (*ck)->find("w.weight");
  const TensorEntry* s = (*ck)->find("w.weight_scale_inv");
  ASSERT_TRUE(w && s);
  EXPECT_EQ(w->scale_inv, s);
  EXPECT_EQ(s->scales, w);
  EXPECT_TRUE(s->is_block_scale());
  EXPECT_EQ((*ck)->value_dtype(*w), DType::BF16);  // no config: DeepSeek's bf16
  auto v = (*ck)->read_f32(*w);
  ASSERT_TRUE(v) << v.error().str();
  const auto sc = scales(130, 260, 0.01f);
  const auto bytes = fp8_bytes(130, 260, 3);
  EXPECT_EQ((*v)[129 * 260 + 259], bf16_to_f32(f32_to_bf16(f8_e4m3_to_f32(bytes[129 * 260 + 259]) * sc[5])));
}

TEST_F(Fp8Checkpoint, RefusesAWeightWithoutScalesOrWithBadOnes) {
  auto no_scale = Checkpoint::open(write({}, false));
  ASSERT_TRUE(no_scale);
  auto r = (*no_scale)->read_f32("w.weight");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("has no 'w.weight_scale_inv' block scales"), std::string::npos) << r.error().str();
  EXPECT_EQ(r.error().tensor, "w.weight");

  std::vector<TestTensor> t = {{"w.weight_scale_inv", DType::F32, {1, 3}, std::vector<uint8_t>(12)},
                               {"w.weight", DType::F8_E4M3, {130, 260}, fp8_bytes(130, 260, 3)}};
  st_test::write_tensors(dir_ / "bad.safetensors", t);
  auto bad = Checkpoint::open(dir_ / "bad.safetensors");
  ASSERT_TRUE(bad);
  r = (*bad)->read_f32("w.weight");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("have shape [1, 3], a [130, 260] weight in 128x128 blocks needs [2, 3]"),
            std::string::npos)
      << r.error().str();

  auto nan = scales(130, 260, 0.01f);
  nan[4] = NAN;
  t = {{"w.weight_scale_inv", DType::F32, {2, 3}, as_bytes(nan)},
       {"w.weight", DType::F8_E4M3, {130, 260}, fp8_bytes(130, 260, 3)}};
  st_test::write_tensors(dir_ / "nan.safetensors", t);
  auto n = Checkpoint::open(dir_ / "nan.safetensors");
  ASSERT_TRUE(n);
  r = (*n)->read_f32("w.weight");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::numeric);
  EXPECT_EQ(r.error().tensor, "w.weight_scale_inv");
}

// A one-layer FP8 llama whose every dimension splits into whole 128-blocks at tp 2.
TEST(Fp8Shard, PartsDecodeToTheRowsOfTheWholeWeightAndMergeBack) {
  TempDir dir;
  const std::string model = dir / "fp8";
  st_test::make_dir(model);
  st_test::write_bytes(model + "/config.json",
                       R"({"model_type":"llama","num_attention_heads":2,"num_key_value_heads":2,"hidden_size":256,)"
                       R"("head_dim":128,"intermediate_size":512,"vocab_size":256,"num_hidden_layers":1,)"
                       R"("torch_dtype":"bfloat16","quantization_config":{"quant_method":"fp8","fmt":"e4m3",)"
                       R"("weight_block_size":[128,128]}})");
  std::vector<TestTensor> t;
  uint32_t seed = 1;
  auto linear = [&](const std::string& p, int64_t n, int64_t k) {
    t.push_back({p + ".weight_scale_inv", DType::F32, block_scale_shape({n, k}), as_bytes(scales(n, k, 0.001f * seed))});
    t.push_back({p + ".weight", DType::F8_E4M3, {n, k}, fp8_bytes(n, k, seed++)});
  };
  const std::string l = "model.layers.0.";
  t.push_back({"model.embed_tokens.weight", DType::BF16, {256, 256}, st_test::pattern(256 * 256 * 2, 90)});
  for (const char* p : {"q_proj", "k_proj", "v_proj", "o_proj"}) linear(l + "self_attn." + p, 256, 256);
  linear(l + "mlp.gate_proj", 512, 256);
  linear(l + "mlp.up_proj", 512, 256);
  linear(l + "mlp.down_proj", 256, 512);
  st_test::write_tensors(model + "/model.safetensors", t);
  auto in = Checkpoint::open(model);
  ASSERT_TRUE(in) << in.error().str();

  ShardOptions so;
  so.tp = 2;
  auto parts_out = open_output({dir / "parts", /*stream=*/false, false, {model}, {}});
  ASSERT_TRUE(parts_out) << parts_out.error().str();
  auto s = shard(**in, **parts_out, so);
  ASSERT_TRUE(s) << s.error().str();
  for (int r = 0; r < 2; ++r) {
    auto part = Checkpoint::open(dir / ("parts/part" + std::to_string(r) + "-of-2"));
    ASSERT_TRUE(part) << part.error().str();
    // Packed q/k/v: each member's 128 rows of this rank, in order.
    auto qkv = (*part)->read_f32(l + "self_attn.query_key_value.weight");
    ASSERT_TRUE(qkv) << qkv.error().str();
    ASSERT_EQ(qkv->size(), size_t(384 * 256));
    for (int m = 0; m < 3; ++m) {
      auto whole = (*in)->read_f32(l + "self_attn." + std::string(m == 0 ? "q" : m == 1 ? "k" : "v") + "_proj.weight");
      EXPECT_EQ(0, std::memcmp(qkv->data() + m * 128 * 256, whole->data() + r * 128 * 256, 128 * 256 * 4)) << m;
    }
    // Row-parallel down_proj: this rank's 256 columns.
    auto down = (*part)->read_f32(l + "mlp.down_proj.weight");
    auto whole = (*in)->read_f32(l + "mlp.down_proj.weight");
    ASSERT_TRUE(down && whole);
    for (int64_t row = 0; row < 256; ++row)
      EXPECT_EQ(0, std::memcmp(down->data() + row * 256, whole->data() + row * 512 + r * 256, 256 * 4)) << row;
  }
  auto merged_out = open_output({dir / "merged", /*stream=*/true, false, {dir / "parts"}, {}});
  ASSERT_TRUE(merged_out) << merged_out.error().str();
  auto m = merge(dir / "parts", **merged_out, MergeOptions{});
  ASSERT_TRUE(m) << m.error().str();
  EXPECT_EQ(st_test::read_bytes(dir / "merged/model.safetensors"), st_test::read_bytes(model + "/model.safetensors"));
}

}  // namespace
}  // namespace st
