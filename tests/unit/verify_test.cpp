// st-verify's library: a small W8A8 checkpoint built here with the DESIGN.md formulas (and the
// writer's checksums) verifies clean; each planted fault is found and named.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "libst/format/checksum.hpp"
#include "libst/core/dtype.hpp"
#include "libst/format/output.hpp"
#include "libst/format/safetensors.hpp"
#include "libst/verify/verify.hpp"

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/st-verify-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { st::remove_tree(path); }
};

void write_text(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A float linear and its static W8A8 quantization (DESIGN.md "W8A8 static").
struct Linear {
  std::string prefix;
  int64_t n = 0, k = 0;
  std::vector<uint16_t> w16;  // fp16 [n,k]
  float lo = 0, hi = 0;       // calibration range of the input
  std::vector<int8_t> wq;
  std::vector<float> sw, deq;
  uint16_t s_in16 = 0, off16 = 0;
  std::vector<int32_t> qb;
};

Linear make_linear(const std::string& prefix, int64_t n, int64_t k, float lo, float hi, std::mt19937& rng) {
  Linear l;
  l.prefix = prefix, l.n = n, l.k = k;
  std::normal_distribution<float> dist(0.0f, 0.05f);
  for (int64_t i = 0; i < n * k; ++i) l.w16.push_back(st::f32_to_f16(dist(rng)));
  const float eps = std::numeric_limits<float>::epsilon();
  lo = std::min(lo, 0.0f), hi = std::max(hi, 0.0f);
  const float s_in = std::max((hi - lo) / 255.0f, eps);
  const float off = std::nearbyint(-lo / s_in) - 128.0f;
  l.s_in16 = st::f32_to_f16(s_in);
  l.off16 = st::f32_to_f16(off);
  for (int64_t r = 0; r < n; ++r) {
    float m = 0;
    for (int64_t c = 0; c < k; ++c) m = std::max(m, std::fabs(st::f16_to_f32(l.w16[r * k + c])));
    const float s = std::max(m / 127.0f, eps);
    l.sw.push_back(s);
    int64_t sum = 0;
    for (int64_t c = 0; c < k; ++c) {
      const float q = std::min(127.0f, std::max(-128.0f, std::nearbyint(st::f16_to_f32(l.w16[r * k + c]) / s)));
      l.wq.push_back(static_cast<int8_t>(q));
      sum += static_cast<int64_t>(q);
    }
    l.deq.push_back(s_in * s);
    l.qb.push_back(static_cast<int32_t>(std::nearbyint(0.0f / l.deq.back() - off * static_cast<float>(sum))));
  }
  return l;
}

// Writes OUT/quant_model_weight_w8a8.safetensors (+ .xxh3), the description and config.
struct Model {
  std::vector<Linear> linears;
  std::vector<uint16_t> embed;  // fp16 [16, 32]
  // FAQuant scales of model.layers.0.self_attn (2 heads, 1 KV head): rows of fa_q, fa_k / fa_v.
  bool fa = false;
  int64_t fa_q_rows = 2, fa_kv_rows = 1;
  const char* fa_type = "FAQuant";
};

Model make_model() {
  std::mt19937 rng(1234);
  Model m;
  m.linears.push_back(make_linear("model.layers.0.self_attn.q_proj", 32, 32, -3.0f, 2.5f, rng));
  m.linears.push_back(make_linear("model.layers.0.self_attn.k_proj", 16, 32, -3.0f, 2.5f, rng));
  m.linears.push_back(make_linear("model.layers.0.mlp.down_proj", 32, 64, -1.0f, 4.0f, rng));
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int i = 0; i < 16 * 32; ++i) m.embed.push_back(st::f32_to_f16(dist(rng)));
  return m;
}

const char* kConfig = R"({"model_type": "llama", "torch_dtype": "float16", "num_attention_heads": 2,
  "num_key_value_heads": 1, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "vocab_size": 64})";

void write_quantized(const Model& m, const std::string& dir, bool checksums = true) {
  ::mkdir(dir.c_str(), 0755);
  std::vector<st::TensorSpec> plan = {{"model.embed_tokens.weight", st::DType::F16, {16, 32}}};
  std::string desc = "{\"model_quant_type\": \"W8A8\", \"model.embed_tokens.weight\": \"FLOAT\"";
  for (const auto& l : m.linears) {
    const std::string P = l.prefix + ".";
    plan.push_back({P + "weight", st::DType::I8, {l.n, l.k}});
    plan.push_back({P + "weight_scale", st::DType::F32, {l.n, 1}});
    plan.push_back({P + "weight_offset", st::DType::F32, {l.n, 1}});
    plan.push_back({P + "input_scale", st::DType::F16, {1}});
    plan.push_back({P + "input_offset", st::DType::F16, {1}});
    plan.push_back({P + "deq_scale", st::DType::I64, {l.n}});
    plan.push_back({P + "quant_bias", st::DType::I32, {l.n}});
    for (const char* s : {"weight", "weight_scale", "weight_offset", "input_scale", "input_offset", "deq_scale", "quant_bias"})
      desc += ", \"" + P + s + "\": \"W8A8\"";
  }
  const std::string attn = "model.layers.0.self_attn.fa_";
  if (m.fa) {
    for (const char* who : {"q", "k", "v"}) {
      const int64_t rows = who[0] == 'q' ? m.fa_q_rows : m.fa_kv_rows;
      plan.push_back({attn + who + ".scale", st::DType::F16, {rows, 1}});
      plan.push_back({attn + who + ".offset", st::DType::I8, {rows, 1}});
      desc += ", \"" + attn + who + ".scale\": \"FAQuant\", \"" + attn + who + ".offset\": \"FAQuant\"";
    }
    if (m.fa_type) desc += std::string(", \"fa_quant_type\": \"") + m.fa_type + "\"";
  }
  desc += "}";
  st::WriterOptions opts;
  opts.checksums = checksums;
  auto w = st::SafetensorsWriter::create(dir + "/quant_model_weight_w8a8.safetensors", plan, {}, opts);
  ASSERT_TRUE(w) << w.error().str();
  ASSERT_TRUE((*w)->write("model.embed_tokens.weight", m.embed.data(), m.embed.size() * 2));
  for (const auto& l : m.linears) {
    const std::string P = l.prefix + ".";
    std::vector<float> zeros(static_cast<size_t>(l.n), 0.0f);
    std::vector<int64_t> deq64;
    for (float d : l.deq) {
      uint32_t bits;
      std::memcpy(&bits, &d, 4);
      deq64.push_back(static_cast<int64_t>(bits));
    }
    ASSERT_TRUE((*w)->write(P + "weight", l.wq.data(), l.wq.size()));
    ASSERT_TRUE((*w)->write(P + "weight_scale", l.sw.data(), l.sw.size() * 4));
    ASSERT_TRUE((*w)->write(P + "weight_offset", zeros.data(), zeros.size() * 4));
    ASSERT_TRUE((*w)->write(P + "input_scale", &l.s_in16, 2));
    ASSERT_TRUE((*w)->write(P + "input_offset", &l.off16, 2));
    ASSERT_TRUE((*w)->write(P + "deq_scale", deq64.data(), deq64.size() * 8));
    ASSERT_TRUE((*w)->write(P + "quant_bias", l.qb.data(), l.qb.size() * 4));
  }
  if (m.fa) {
    for (const char* who : {"q", "k", "v"}) {
      const int64_t rows = who[0] == 'q' ? m.fa_q_rows : m.fa_kv_rows;
      std::vector<uint16_t> scale(static_cast<size_t>(rows), st::f32_to_f16(0.05f));
      std::vector<int8_t> offset(static_cast<size_t>(rows), 0);
      ASSERT_TRUE((*w)->write(attn + who + ".scale", scale.data(), scale.size() * 2));
      ASSERT_TRUE((*w)->write(attn + who + ".offset", offset.data(), offset.size()));
    }
  }
  ASSERT_TRUE((*w)->finish());
  write_text(dir + "/quant_model_description.json", desc);
  write_text(dir + "/config.json", kConfig);
}

void write_float(const Model& m, const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  std::vector<st::TensorSpec> plan = {{"model.embed_tokens.weight", st::DType::F16, {16, 32}}};
  for (const auto& l : m.linears) plan.push_back({l.prefix + ".weight", st::DType::F16, {l.n, l.k}});
  auto w = st::SafetensorsWriter::create(dir + "/model.safetensors", plan, {});
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->write("model.embed_tokens.weight", m.embed.data(), m.embed.size() * 2));
  for (const auto& l : m.linears) ASSERT_TRUE((*w)->write(l.prefix + ".weight", l.w16.data(), l.w16.size() * 2));
  ASSERT_TRUE((*w)->finish());
  write_text(dir + "/config.json", kConfig);
}

// Xors one byte of a tensor's data in a file.
void flip(const std::string& file, const std::string& tensor, size_t byte) {
  auto f = st::SafetensorsFile::open(file);
  ASSERT_TRUE(f);
  const st::TensorInfo* t = (*f)->header().find(tensor);
  ASSERT_NE(t, nullptr);
  const uint64_t at = (*f)->header().data_start() + t->begin + byte;
  f->reset();
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  io.seekg(static_cast<std::streamoff>(at));
  char c;
  io.get(c);
  io.seekp(static_cast<std::streamoff>(at));
  io.put(static_cast<char>(c ^ 0x21));
}

std::string problems(const st::VerifyReport& r) {
  std::string s;
  for (const auto& p : r.problems) s += p.str() + "\n";
  return s;
}

bool has_problem(const st::VerifyReport& r, const std::string& check, const std::string& tensor, const std::string& text) {
  for (const auto& p : r.problems)
    if (p.check == check && p.tensor == tensor && p.message.find(text) != std::string::npos) return true;
  return false;
}

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model = make_model();
    qdir = tmp.path + "/q";
    fdir = tmp.path + "/float";
    weights = qdir + "/quant_model_weight_w8a8.safetensors";
    write_quantized(model, qdir);
    write_float(model, fdir);
  }
  st::VerifyReport run(const std::string& path, bool against = false) {
    st::VerifyOptions o;
    if (against) o.against = fdir;
    auto r = st::verify(path, o);
    EXPECT_TRUE(r) << r.error().str();
    return r ? std::move(r.value()) : st::VerifyReport{};
  }
  TempDir tmp;
  Model model;
  std::string qdir, fdir, weights;
};

TEST_F(VerifyTest, CleanCheckpointVerifies) {
  auto r = run(qdir, true);
  EXPECT_TRUE(r.problems.empty()) << problems(r);
  EXPECT_EQ(r.layout, "quantized");
  EXPECT_EQ(r.model_quant_type, "W8A8");
  EXPECT_EQ(r.linears, 3u);
  EXPECT_EQ(r.file_checksums, 1u);
  EXPECT_EQ(r.tensor_checksums, 1u + 3 * 7);
  ASSERT_EQ(r.numerics.size(), 3u);
  for (const auto& n : r.numerics) {
    EXPECT_GT(n.sqnr_db, 30.0) << n.name;  // 8-bit symmetric rounding of a Gaussian row
    EXPECT_GT(n.cosine, 0.999) << n.name;
    EXPECT_EQ(n.off_step, 0u);
    EXPECT_LE(n.max_step_error, 0.5 + 1e-3);
  }
  const auto json = st::verify_report_json(r, 2);
  EXPECT_EQ(json["ok"], true);
  EXPECT_EQ(json["worst"].size(), 2u);
}

TEST_F(VerifyTest, FlippedByteIsLocatedToItsTensor) {
  flip(weights, "model.layers.0.self_attn.k_proj.deq_scale", 1);
  auto r = run(qdir);
  EXPECT_TRUE(has_problem(r, "integrity", "model.layers.0.self_attn.k_proj.deq_scale", "XXH3 mismatch")) << problems(r);
  EXPECT_TRUE(has_problem(r, "integrity", "", "XXH3 checksum mismatch")) << problems(r);
  EXPECT_TRUE(has_problem(r, "arithmetic", "model.layers.0.self_attn.k_proj.deq_scale", "input_scale * weight_scale"))
      << problems(r);
}

TEST_F(VerifyTest, FlippedWeightFoundAgainstFloatWithoutChecksums) {
  st::remove_tree(qdir);
  write_quantized(model, qdir, /*checksums=*/false);
  flip(weights, "model.layers.0.mlp.down_proj.weight", 70);
  auto r = run(qdir, true);
  EXPECT_EQ(r.file_checksums + r.tensor_checksums, 0u);
  EXPECT_TRUE(has_problem(r, "numerics", "model.layers.0.mlp.down_proj.weight", "1 of 2048 int8 values")) << problems(r);
  EXPECT_TRUE(has_problem(r, "arithmetic", "model.layers.0.mlp.down_proj.quant_bias", "row 1 is")) << problems(r);
}

TEST_F(VerifyTest, TruncatedFileIsAProblemNotAnError) {
  ASSERT_EQ(::truncate(weights.c_str(), 100), 0);
  auto r = run(qdir);
  EXPECT_TRUE(has_problem(r, "integrity", "", "does not parse")) << problems(r);
  EXPECT_TRUE(has_problem(r, "integrity", "", "XXH3 checksum mismatch")) << problems(r);
}

TEST_F(VerifyTest, DescriptionMismatchesAreNamed) {
  write_text(qdir + "/quant_model_description.json",
             "{\"model_quant_type\": \"W8A8\", \"model.embed_tokens.weight\": \"FLOAT\", \"ghost.weight\": \"FLOAT\"}");
  auto r = run(qdir);
  EXPECT_TRUE(has_problem(r, "structure", "ghost.weight", "not stored")) << problems(r);
  EXPECT_TRUE(has_problem(r, "structure", "model.layers.0.mlp.down_proj.quant_bias", "not in the description")) << problems(r);
}

TEST_F(VerifyTest, FusedGroupMustShareInputScale) {
  model.linears[1].s_in16 = st::f32_to_f16(st::f16_to_f32(model.linears[1].s_in16) * 2);
  for (auto& d : model.linears[1].deq) d *= 2;
  st::remove_tree(qdir);
  write_quantized(model, qdir);
  auto r = run(qdir);
  // Named on whichever member comes first in the file.
  EXPECT_TRUE(has_problem(r, "arithmetic", "model.layers.0.self_attn.k_proj.input_scale", "fused partner") ||
              has_problem(r, "arithmetic", "model.layers.0.self_attn.q_proj.input_scale", "fused partner"))
      << problems(r);
  EXPECT_EQ(r.problems.size(), 1u) << problems(r);
}

TEST_F(VerifyTest, QuantBiasAndOffsetRules) {
  model.linears[0].qb[3] += 5;
  model.linears[2].off16 = st::f32_to_f16(200.0f);
  st::remove_tree(qdir);
  write_quantized(model, qdir);
  auto r = run(qdir);
  EXPECT_TRUE(has_problem(r, "arithmetic", "model.layers.0.self_attn.q_proj.quant_bias", "row 3 is")) << problems(r);
  EXPECT_TRUE(has_problem(r, "arithmetic", "model.layers.0.mlp.down_proj.input_offset", "[-128, 127]")) << problems(r);
}

TEST_F(VerifyTest, PartFoldersMustBeComplete) {
  const std::string parts = tmp.path + "/parts";
  ::mkdir(parts.c_str(), 0755);
  write_quantized(model, parts + "/part0-of-3");
  write_quantized(model, parts + "/part2-of-3");
  auto r = run(parts);
  EXPECT_EQ(r.layout, "parts");
  bool found = false;
  for (const auto& p : r.problems)
    found = found || (p.file == parts + "/part1-of-3" && p.message.find("part folder missing") != std::string::npos);
  EXPECT_TRUE(found) << problems(r);
  // Whole copies of a row-parallel linear: the second rank's quant_bias must be zero.
  EXPECT_TRUE(has_problem(r, "arithmetic", "model.layers.0.mlp.down_proj.quant_bias", "expected 0")) << problems(r);
}

TEST_F(VerifyTest, AttentionScalesFollowTheHeads) {
  model.fa = true;
  st::remove_tree(qdir);
  write_quantized(model, qdir);
  auto r = run(qdir);
  EXPECT_TRUE(r.problems.empty()) << problems(r);

  model.fa_kv_rows = 2;  // k/v scales per query head instead of per KV head
  model.fa_type = nullptr;
  st::remove_tree(qdir);
  write_quantized(model, qdir);
  r = run(qdir);
  EXPECT_TRUE(has_problem(r, "structure", "model.layers.0.self_attn.fa_k.scale", "expected F16 [1,1]")) << problems(r);
  EXPECT_TRUE(has_problem(r, "structure", "model.layers.0.self_attn.fa_v.offset", "expected I8 [1,1]")) << problems(r);
  EXPECT_TRUE(has_problem(r, "structure", "", "fa_quant_type is missing")) << problems(r);
}

TEST_F(VerifyTest, CouldNotCheckIsAnError) {
  st::VerifyOptions o;
  EXPECT_FALSE(st::verify(tmp.path + "/nothing", o));
  EXPECT_FALSE(st::verify(tmp.path, o));  // no checkpoint in it
  o.against = qdir;                        // a quantized model is not a float model
  EXPECT_FALSE(st::verify(qdir, o));
}

}  // namespace
