// Config parsing, RoPE variants, token files and the quantized linears' integer arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <filesystem>
#include <fstream>
#include <map>

#include "libst/format/checkpoint.hpp"
#include "libst/core/dtype.hpp"
#include "libst/arch/config.hpp"
#include "libst/model/linear.hpp"
#include "libst/model/rope.hpp"
#include "libst/data/tokens.hpp"
#include "libst/format/safetensors.hpp"

namespace {

using nlohmann::json;
using namespace st::model;

json llama_config() {
  return json::parse(R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0})");
}

std::string tmpdir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("st-model-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

TEST(ModelConfig, UnknownArchitectureNamesSupported) {
  json j = llama_config();
  j["model_type"] = "gpt2";
  auto c = parse_config(j);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("'gpt2'"), std::string::npos);
  EXPECT_NE(c.error().message.find("llama, mistral, qwen2, qwen3, qwen3_moe, mixtral, glm, glm4, chatglm, baichuan, "
                                   "deepseek_v2, deepseek_v3"),
            std::string::npos);
}

TEST(ModelConfig, LlamaDefaultsAndLegacyRope) {
  auto c = parse_config(llama_config());
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->kv_heads, 2);
  EXPECT_DOUBLE_EQ(c->rope.theta, 500000.0);
  EXPECT_EQ(c->rope.type, "default");
  EXPECT_FALSE(c->mla);
  EXPECT_NEAR(c->attention_scale(), 0.25, 1e-12);
}

TEST(ModelConfig, MissingKeyAndBadHeads) {
  json j = llama_config();
  j.erase("hidden_size");
  auto c = parse_config(j);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("hidden_size"), std::string::npos);
  j = llama_config();
  j["num_key_value_heads"] = 3;
  EXPECT_FALSE(parse_config(j));
  j = llama_config();
  j["hidden_act"] = "gelu";
  auto gelu = parse_config(j);  // a valid config the forward pass cannot run
  ASSERT_TRUE(gelu) << gelu.error().str();
  const st::Status runs = gelu->runnable();
  ASSERT_FALSE(runs);
  EXPECT_EQ(runs.error().code, st::Errc::unsupported);
  EXPECT_NE(runs.error().message.find("hidden_act 'gelu'"), std::string::npos);
}

// Values that make the arithmetic meaningless (rope_theta 0 gave perplexity -nan, exit 0) are
// refused with the key in the message.
TEST(ModelConfig, MeaninglessNumbersAreRefusedNamingTheKey) {
  const std::vector<std::pair<std::function<void(json&)>, std::string>> cases = {
      {[](json& j) { j["rope_theta"] = 0; }, "'rope_theta' is 0, not a finite number above 1"},
      {[](json& j) { j["rope_theta"] = -10000; }, "'rope_theta' is -10000"},
      {[](json& j) { j["rope_theta"] = 1; }, "'rope_theta' is 1"},
      {[](json& j) { j["rope_parameters"] = {{"rope_type", "linear"}, {"rope_theta", 10000}, {"factor", 0}}; },
       "'factor' is 0"},
      {[](json& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", -2.0}}; }, "'factor' is -2"},
      {[](json& j) {
         j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0}, {"high_freq_factor", 4.0}};
       },
       "'high_freq_factor' is 4, not a finite number above 4"},
      {[](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"beta_fast", 0}}; }, "'beta_fast' is 0"},
      {[](json& j) { j["rms_norm_eps"] = -1e-6; }, "'rms_norm_eps' is -1e-06"},
      {[](json& j) { j["hidden_size"] = 0; }, "'hidden_size' is 0: it must be positive"},
      {[](json& j) { j["num_key_value_heads"] = 0; }, "'num_key_value_heads' is 0"},
      {[](json& j) { j["vocab_size"] = -5; }, "key 'vocab_size' is not a valid count"},
      {[](json& j) { j["head_dim"] = 0; }, "'head_dim' is 0"},
      {[](json& j) { j["num_hidden_layers"] = 1000000; }, "'num_hidden_layers' is implausible"},
  };
  for (const auto& [edit, why] : cases) {
    json j = llama_config();
    edit(j);
    auto c = parse_config(j);
    ASSERT_FALSE(c) << j.dump();
    EXPECT_EQ(c.error().code, st::Errc::format) << c.error().str();
    EXPECT_NE(c.error().message.find(why), std::string::npos) << c.error().message;
    EXPECT_EQ(c.error().file, "config.json");
  }
  json nan = llama_config();
  nan["rope_theta"] = std::nan("");  // as a JSON parser that accepts NaN would give it
  auto c = parse_config(nan);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("'rope_theta' is nan"), std::string::npos) << c.error().message;
}

TEST(ModelConfig, DeepseekV3FromFixture) {
  std::ifstream in(std::string(ST_FIXTURES) + "/deepseekv3-mla-6m-fp16/config.json");
  auto c = parse_config(json::parse(in));
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_TRUE(c->mla);
  EXPECT_EQ(c->qk_head_dim(), 48);
  EXPECT_EQ(c->rope_dim(), 16);
  EXPECT_TRUE(c->rope_interleave);
  EXPECT_FALSE(c->is_moe_layer(0));
  EXPECT_TRUE(c->is_moe_layer(1));
  EXPECT_EQ(c->scoring_func, "sigmoid");
  EXPECT_TRUE(c->norm_topk_prob);
  EXPECT_DOUBLE_EQ(c->routed_scaling_factor, 2.5);
}

TEST(ModelConfig, DeepseekV2Defaults) {
  json j = llama_config();
  j["model_type"] = "deepseek_v2";
  j["kv_lora_rank"] = 32, j["qk_nope_head_dim"] = 16, j["qk_rope_head_dim"] = 8, j["v_head_dim"] = 16;
  j["q_lora_rank"] = nullptr;
  j["n_routed_experts"] = 4, j["num_experts_per_tok"] = 2, j["moe_intermediate_size"] = 32;
  auto c = parse_config(j);
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ(c->q_lora_rank, 0);
  EXPECT_TRUE(c->rope_interleave);
  EXPECT_EQ(c->scoring_func, "softmax");
  EXPECT_EQ(c->topk_method, "greedy");
  EXPECT_EQ(c->kv_heads, c->heads);
}

TEST(Rope, DefaultFrequenciesAndRotation) {
  RopeConfig rc;
  Rope r(rc, 8, false);
  ASSERT_EQ(r.inv_freq().size(), 4u);
  EXPECT_FLOAT_EQ(r.inv_freq()[0], 1.0f);
  EXPECT_NEAR(r.inv_freq()[1], std::pow(10000.0, -0.25), 1e-7);
  r.prepare(4);
  float x[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  r.apply(x, 1);  // pair (x0, x4) rotated by 1 radian
  EXPECT_NEAR(x[0], std::cos(1.0), 1e-6);
  EXPECT_NEAR(x[4], std::sin(1.0), 1e-6);
  // interleaved: pairs (x0,x1) gathered into halves first
  Rope ri(rc, 8, true);
  ri.prepare(4);
  float y[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  ri.apply(y, 0);
  EXPECT_FLOAT_EQ(y[0], 1.0f);
  float z[8] = {0, 1, 0, 0, 0, 0, 0, 0};
  ri.apply(z, 0);
  EXPECT_FLOAT_EQ(z[4], 1.0f);  // x1 moved to the second half
}

TEST(Rope, Llama3AndYarnScaling) {
  RopeConfig rc;
  rc.theta = 500000;
  rc.type = "llama3";
  rc.factor = 8, rc.low_freq_factor = 1, rc.high_freq_factor = 4, rc.original_max_position_embeddings = 8192;
  RopeConfig plain;
  plain.theta = 500000;
  Rope base(plain, 128, false), l3(rc, 128, false);
  // high frequencies (short wavelengths) unchanged, the lowest divided by the factor
  EXPECT_FLOAT_EQ(l3.inv_freq()[0], base.inv_freq()[0]);
  EXPECT_NEAR(l3.inv_freq()[63], base.inv_freq()[63] / 8, base.inv_freq()[63] * 1e-6);
  RopeConfig y;
  y.type = "yarn", y.factor = 4, y.original_max_position_embeddings = 4096;
  Rope yr(y, 64, false), yb(RopeConfig{}, 64, false);
  EXPECT_FLOAT_EQ(yr.inv_freq()[0], yb.inv_freq()[0]);
  EXPECT_NEAR(yr.inv_freq()[31], yb.inv_freq()[31] / 4, yb.inv_freq()[31] * 1e-5);
  EXPECT_NEAR(yr.attention_factor(), 0.1 * std::log(4.0) + 1.0, 1e-6);
}

TEST(Tokens, RawJsonlAndErrors) {
  const std::string d = tmpdir("tokens");
  {
    std::ofstream f(d + "/a.u32", std::ios::binary);
    uint32_t v[6] = {1, 2, 3, 4, 5, 6};
    f.write(reinterpret_cast<char*>(v), sizeof v);
    std::ofstream j(d + "/a.jsonl");
    j << "{\"input_ids\": [7, 8, 9]}\n\n[1, 2]\n";
  }
  auto r = load_tokens(d + "/a.u32", 3, 0);
  ASSERT_TRUE(r) << r.error().str();
  ASSERT_EQ(r->seqs.size(), 2u);
  EXPECT_EQ(r->seqs[1], (std::vector<int32_t>{4, 5, 6}));
  EXPECT_FALSE(load_tokens(d + "/a.u32", 4, 0));  // not a whole number of sequences
  EXPECT_FALSE(load_tokens(d + "/a.u32", 0, 0));  // raw needs a length
  auto j = load_tokens(d + "/a.jsonl", 0, 0);
  ASSERT_TRUE(j) << j.error().str();
  ASSERT_EQ(j->seqs.size(), 2u);
  EXPECT_EQ(j->seqs[0], (std::vector<int32_t>{7, 8, 9}));
  EXPECT_EQ(load_tokens(d + "/a.jsonl", 0, 1)->seqs.size(), 1u);
  ModelConfig cfg;
  cfg.vocab = 9, cfg.max_positions = 16;
  auto bad = check_tokens(*j, cfg);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("token id 9 at position 2"), std::string::npos);
  cfg.vocab = 10, cfg.max_positions = 2;
  EXPECT_FALSE(check_tokens(*j, cfg));
  std::filesystem::remove_all(d);
}

// A quantized directory with one W8A8 (fp16 model: int64-packed deq_scale, fp16 input
// scale/offset) and one W8A8_DYNAMIC linear, written with SafetensorsWriter.
// With (n, k) other than (3, 4): seeded int8 weights, scales and biases of that shape.
struct QuantFixture {
  std::string dir;
  int64_t n = 3, k = 4;
  std::vector<int8_t> w = {12, -128, 127, 5, -7, 0, 33, -64, 90, 1, -2, 3};  // [3, 4]
  std::vector<float> wscale = {0.01f, 0.02f, 0.005f};
  float in_scale = 0.03125f, in_offset = -3.0f;
  std::vector<int32_t> qbias = {100, -2000, 7};
  std::vector<float> deq;

  explicit QuantFixture(int64_t rows = 3, int64_t cols = 4) : n(rows), k(cols) {
    if (n != 3 || k != 4) {
      uint32_t seed = 12345;
      auto next = [&seed] { return seed = seed * 1664525u + 1013904223u; };
      w.resize(size_t(n * k));
      for (auto& v : w) v = int8_t(next() >> 24);
      wscale.resize(size_t(n));
      qbias.resize(size_t(n));
      for (int64_t i = 0; i < n; ++i) wscale[size_t(i)] = 0.001f * float(1 + next() % 50), qbias[size_t(i)] = int32_t(next() % 20001) - 10000;
    }
    dir = tmpdir("quant");
    for (int64_t i = 0; i < n; ++i) deq.push_back(in_scale * wscale[size_t(i)]);
    std::map<std::string, std::vector<uint8_t>> bytes;
    std::vector<st::TensorSpec> plan;
    auto add = [&](const std::string& name, st::DType t, std::vector<int64_t> shape, const void* p, size_t size) {
      plan.push_back({name, t, shape});
      bytes[name].assign(static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + size);
    };
    std::vector<int64_t> deq_bits;
    for (float f : deq) {
      uint32_t b;
      std::memcpy(&b, &f, 4);
      deq_bits.push_back(int64_t(b));
    }
    const uint16_t is = st::f32_to_f16(in_scale), io = st::f32_to_f16(in_offset);
    for (const std::string p : {"s", "d"}) {
      add(p + ".weight", st::DType::I8, {n, k}, w.data(), w.size());
      add(p + ".weight_scale", st::DType::F32, {n, 1}, wscale.data(), size_t(n) * 4);
    }
    add("s.input_scale", st::DType::F16, {1}, &is, 2);
    add("s.input_offset", st::DType::F16, {1}, &io, 2);
    add("s.deq_scale", st::DType::I64, {n}, deq_bits.data(), size_t(n) * 8);
    add("s.quant_bias", st::DType::I32, {n}, qbias.data(), size_t(n) * 4);
    auto wr = st::SafetensorsWriter::create(dir + "/quant_model_weight_w8a8.safetensors", plan, {});
    EXPECT_TRUE(wr) << wr.error().str();
    for (const auto& t : (*wr)->tensors()) {
      auto s = (*wr)->write(t.name, bytes[t.name].data(), bytes[t.name].size());
      EXPECT_TRUE(s) << s.error().str();
    }
    EXPECT_TRUE((*wr)->finish());
    std::ofstream(dir + "/quant_model_description.json")
        << R"({"model_quant_type": "W8A8", "s.weight": "W8A8", "s.weight_scale": "W8A8", "s.input_scale": "W8A8",
        "s.input_offset": "W8A8", "s.deq_scale": "W8A8", "s.quant_bias": "W8A8",
        "d.weight": "W8A8_DYNAMIC", "d.weight_scale": "W8A8_DYNAMIC"})";
  }
  ~QuantFixture() { std::filesystem::remove_all(dir); }
};

TEST(Linear, W8A8StaticIntegerArithmetic) {
  QuantFixture fx;
  auto ck = st::Checkpoint::open(fx.dir);
  ASSERT_TRUE(ck) << ck.error().str();
  auto l = Linear::load(**ck, "s");
  ASSERT_TRUE(l) << l.error().str();
  EXPECT_EQ(l->kind(), LinearKind::w8a8);
  // values chosen to hit rounding ties, clamping at both ends
  const std::vector<float> x = {0.046875f, -5.0f, 5.0f, -0.015625f, 0.0f, 1.0f, -1.0f, 0.078125f};  // [2, 4]
  std::vector<float> y(6);
  l->forward(x.data(), 2, y.data());
  for (int r = 0; r < 2; ++r)
    for (int n = 0; n < 3; ++n) {
      int32_t acc = 0;
      for (int k = 0; k < 4; ++k) {
        const float q = std::nearbyint(x[size_t(r * 4 + k)] / fx.in_scale + fx.in_offset);
        acc += int32_t(std::min(127.0f, std::max(-128.0f, q))) * fx.w[size_t(n * 4 + k)];
      }
      EXPECT_EQ(y[size_t(r * 3 + n)], float(acc + fx.qbias[size_t(n)]) * fx.deq[size_t(n)]) << r << "," << n;
    }
}

// Inputs wider than 1024 channels (summed by sgemm in exact slices) and more output rows than
// one weight tile: still the exact integer arithmetic.
TEST(Linear, W8A8StaticWideAndTiledIsExact) {
  QuantFixture fx(600, 2500);
  auto ck = st::Checkpoint::open(fx.dir);
  ASSERT_TRUE(ck) << ck.error().str();
  auto l = Linear::load(**ck, "s");
  ASSERT_TRUE(l) << l.error().str();
  const int64_t rows = 3, n = fx.n, k = fx.k;
  std::vector<float> x(size_t(rows * k));
  for (int64_t i = 0; i < rows * k; ++i) x[size_t(i)] = float((i * 7919) % 513 - 256) / 64.0f;  // hits both clamps
  std::vector<float> y(size_t(rows * n));
  l->forward(x.data(), rows, y.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < n; ++o) {
      int64_t acc = 0;
      for (int64_t c = 0; c < k; ++c) {
        const float q = std::nearbyint(x[size_t(r * k + c)] / fx.in_scale + fx.in_offset);
        acc += int64_t(std::min(127.0f, std::max(-128.0f, q))) * fx.w[size_t(o * k + c)];
      }
      ASSERT_EQ(y[size_t(r * n + o)], float(int32_t(acc + fx.qbias[size_t(o)])) * fx.deq[size_t(o)]) << r << "," << o;
    }
}

// A float linear with more rows than one weight tile matches the plain product.
TEST(Linear, FloatTiledMatchesPlainProduct) {
  const int64_t out = 3000, in = 700, rows = 5;
  std::vector<float> w(static_cast<size_t>(out * in)), x(static_cast<size_t>(rows * in)), bias(static_cast<size_t>(out));
  for (size_t i = 0; i < w.size(); ++i) w[i] = float(int(i * 2654435761u % 2001) - 1000) / 1000.0f;
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i * 40503u % 201) - 100) / 100.0f;
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = float(i % 7) - 3.0f;
  const Linear l = Linear::from_float("t", out, in, w, bias);
  std::vector<float> y(size_t(rows * out));
  l.forward(x.data(), rows, y.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double want = bias[size_t(o)];
      for (int64_t c = 0; c < in; ++c) want += double(x[size_t(r * in + c)]) * w[size_t(o * in + c)];
      ASSERT_NEAR(y[size_t(r * out + o)], want, 1e-4 * (1 + std::fabs(want))) << r << "," << o;
    }
  EXPECT_EQ(l.float_weight(), w);
}

TEST(Linear, W8A8DynamicPerToken) {
  QuantFixture fx;
  auto ck = st::Checkpoint::open(fx.dir);
  ASSERT_TRUE(ck) << ck.error().str();
  auto l = Linear::load(**ck, "d");
  ASSERT_TRUE(l) << l.error().str();
  EXPECT_EQ(l->kind(), LinearKind::w8a8_dynamic);
  const std::vector<float> x = {0.5f, -1.27f, 0.3f, 0.0f, 0, 0, 0, 0};  // second row all zero
  std::vector<float> y(6);
  l->forward(x.data(), 2, y.data());
  const float s = 1.27f / 127.0f;
  for (int n = 0; n < 3; ++n) {
    int32_t acc = 0;
    for (int k = 0; k < 4; ++k) acc += int32_t(std::nearbyint(x[size_t(k)] / s)) * fx.w[size_t(n * 4 + k)];
    EXPECT_EQ(y[size_t(n)], float(acc) * s * fx.wscale[size_t(n)]);
    EXPECT_EQ(y[size_t(3 + n)], 0.0f);
  }
  // the float view dequantizes
  const auto wf = l->float_weight();
  EXPECT_FLOAT_EQ(wf[4], -7 * 0.02f);
}

TEST(Linear, RefusesCompressedAndMissing) {
  QuantFixture fx;
  auto ck = st::Checkpoint::open(fx.dir);
  ASSERT_TRUE(ck);
  auto missing = Linear::load(**ck, "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().tensor, "nope.weight");
}

}  // namespace
