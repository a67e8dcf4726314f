// libst/shard: split a synthetic W8A8 checkpoint into parts, check the parts' bytes against the
// rules, merge back byte for byte, and refuse tampered or impossible inputs.
#include "libst/shard/shard.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "libst/format/output.hpp"

namespace st {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

struct T {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::string type;
};

// Deterministic bytes per tensor: a function of its name (and index), not all zero.
std::vector<uint8_t> bytes_for(const T& t, const std::string& seed_name) {
  uint64_t n = (dtype_bits(t.dtype) / 8);
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  std::vector<uint8_t> b(n);
  uint64_t h = 1469598103934665603ull;
  for (char c : seed_name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  for (uint64_t i = 0; i < n; ++i) {
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    b[i] = static_cast<uint8_t>(h >> 56);
  }
  return b;
}

class ShardTest : public ::testing::Test {
 protected:
  // A one-layer W8A8 llama: hidden 8, 4 heads of 2, 2 KV heads, intermediate 8, vocab 16.
  void SetUp() override {
    char tmpl[] = "/tmp/st-shard-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    model_ = root_ + "/w8a8";
    ASSERT_EQ(::mkdir(model_.c_str(), 0755), 0);
    spit(model_ + "/config.json",
         R"({"model_type":"llama","num_attention_heads":4,"num_key_value_heads":2,"hidden_size":8,)"
         R"("intermediate_size":8,"vocab_size":16,"num_hidden_layers":1})");
    tensors_ = {{"lm_head.weight", DType::F16, {16, 8}, "FLOAT"}, {"model.embed_tokens.weight", DType::F16, {16, 8}, "FLOAT"},
                {"model.norm.weight", DType::F16, {8}, "FLOAT"}};
    const std::string l = "model.layers.0.";
    auto linear = [&](const std::string& p, int64_t n, int64_t k) {
      tensors_.push_back({p + ".weight", DType::I8, {n, k}, "W8A8"});
      tensors_.push_back({p + ".input_scale", DType::F16, {1}, "W8A8"});
      tensors_.push_back({p + ".input_offset", DType::F16, {1}, "W8A8"});
      tensors_.push_back({p + ".deq_scale", DType::I64, {n}, "W8A8"});
      tensors_.push_back({p + ".quant_bias", DType::I32, {n}, "W8A8"});
      tensors_.push_back({p + ".weight_scale", DType::F32, {n, 1}, "W8A8"});
      tensors_.push_back({p + ".weight_offset", DType::F32, {n, 1}, "W8A8"});
    };
    tensors_.push_back({l + "input_layernorm.weight", DType::F16, {8}, "FLOAT"});
    linear(l + "self_attn.k_proj", 4, 8);  // storage order deliberately not q, k, v
    linear(l + "self_attn.q_proj", 8, 8);
    linear(l + "self_attn.v_proj", 4, 8);
    linear(l + "self_attn.o_proj", 8, 8);
    tensors_.push_back({l + "self_attn.fa_q.scale", DType::F16, {4, 1}, "FAQuant"});
    tensors_.push_back({l + "self_attn.fa_k.scale", DType::F16, {2, 1}, "FAQuant"});
    tensors_.push_back({l + "post_attention_layernorm.weight", DType::F16, {8}, "FLOAT"});
    linear(l + "mlp.gate_proj", 8, 8);
    linear(l + "mlp.up_proj", 8, 8);
    linear(l + "mlp.down_proj", 8, 8);

    std::vector<TensorSpec> specs;
    for (const auto& t : tensors_) specs.push_back({t.name, t.dtype, t.shape});
    auto w = SafetensorsWriter::create(model_ + "/quant_model_weight_w8a8.safetensors", specs, {{"format", "pt"}},
                                       WriterOptions{});
    ASSERT_TRUE(w.ok()) << w.error().str();
    for (const auto& t : tensors_) {
      // A fused group shares one input_scale / input_offset: seed them by group.
      std::string seed = t.name;
      for (const char* m : {"k_proj", "v_proj"})
        if (auto p = seed.find(m); p != std::string::npos && seed.find("input_") != std::string::npos) seed.replace(p, 6, "q_proj");
      if (auto p = seed.find("up_proj"); p != std::string::npos && seed.find("input_") != std::string::npos)
        seed.replace(p, 7, "gate_proj");
      const auto b = bytes_for(t, seed);
      data_[t.name] = b;
      ASSERT_TRUE((*w)->write(t.name, b.data(), b.size()).ok());
    }
    ASSERT_TRUE((*w)->finish().ok());
    Description d;
    d.set_top("model_quant_type", "W8A8");
    d.set_top("fa_quant_type", "FAQuant");
    for (const auto& t : tensors_) d.set_type(t.name, t.type);
    spit(model_ + "/" + kDescriptionFile, d.dump());
  }
  void TearDown() override { remove_tree(root_); }

  std::unique_ptr<Checkpoint> open(const std::string& p) {
    auto c = Checkpoint::open(p);
    EXPECT_TRUE(c.ok()) << c.error().str();
    return c.ok() ? std::move(c.value()) : nullptr;
  }
  std::vector<uint8_t> part_tensor(const Checkpoint& part, const std::string& name) {
    const TensorEntry* e = part.find(name);
    EXPECT_NE(e, nullptr) << name;
    if (!e) return {};
    const ByteView v = part.data(*e);
    return std::vector<uint8_t>(v.data, v.data + v.size);
  }
  // Rows [r0, r1) of a tensor's bytes (row = everything after dim 0).
  std::vector<uint8_t> rows(const std::string& name, int64_t r0, int64_t r1) {
    const auto& b = data_.at(name);
    int64_t n0 = 0;
    for (const auto& t : tensors_)
      if (t.name == name) n0 = t.shape[0];
    const size_t rb = b.size() / static_cast<size_t>(n0);
    return std::vector<uint8_t>(b.begin() + r0 * rb, b.begin() + r1 * rb);
  }

  std::string root_, model_;
  std::vector<T> tensors_;
  std::map<std::string, std::vector<uint8_t>> data_;
};

// shard() and merge() into a path through the output policy, as the tools call them.
Result<ShardSummary> shard_to(const Checkpoint& in, const std::string& out, const ShardOptions& o) {
  ST_ASSIGN(auto d, open_output({out, /*stream=*/false, false, {in.path()}, {}}));
  return shard(in, *d, o);
}
Result<MergeSummary> merge_to(const std::string& parts, const std::string& out) {
  ST_ASSIGN(auto d, open_output({out, /*stream=*/true, false, {parts}, {}}));
  return merge(parts, *d, MergeOptions{});
}

std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST_F(ShardTest, PartsFollowTheRulesAndMergeBackExactly) {
  for (int tp : {2, 4}) {
    SCOPED_TRACE("tp " + std::to_string(tp));
    auto in = open(model_);
    ASSERT_TRUE(in);
    ShardOptions o;
    o.tp = tp;
    const std::string out = root_ + "/parts" + std::to_string(tp);
    auto sum = shard_to(*in, out, o);
    ASSERT_TRUE(sum.ok()) << sum.error().str();
    const int kv_chunks = tp < 2 ? tp : 2;
    for (int r = 0; r < tp; ++r) {
      const std::string pdir = out + "/part" + std::to_string(r) + "-of-" + std::to_string(tp);
      auto part = open(pdir);
      ASSERT_TRUE(part);
      ASSERT_EQ(part->layout(), Layout::quantized);
      const std::string a = "model.layers.0.self_attn.";
      const int64_t q_rows = 8 / tp, kv_rows = 4 / kv_chunks, kc = r * kv_chunks / tp;
      // Packed q/k/v: the rank's q rows, then its KV head's k rows, then v rows.
      EXPECT_EQ(part_tensor(*part, a + "query_key_value.weight"),
                cat({rows(a + "q_proj.weight", r * q_rows, (r + 1) * q_rows),
                     rows(a + "k_proj.weight", kc * kv_rows, (kc + 1) * kv_rows),
                     rows(a + "v_proj.weight", kc * kv_rows, (kc + 1) * kv_rows)}));
      EXPECT_EQ(part_tensor(*part, a + "query_key_value.deq_scale"),
                cat({rows(a + "q_proj.deq_scale", r * q_rows, (r + 1) * q_rows),
                     rows(a + "k_proj.deq_scale", kc * kv_rows, (kc + 1) * kv_rows),
                     rows(a + "v_proj.deq_scale", kc * kv_rows, (kc + 1) * kv_rows)}));
      EXPECT_EQ(part_tensor(*part, a + "query_key_value.input_scale"), data_.at(a + "q_proj.input_scale"));
      EXPECT_EQ(part->find(a + "q_proj.weight"), nullptr);
      // Row-parallel o_proj: columns split, deq_scale whole, quant_bias on rank 0 only.
      const auto ow = part_tensor(*part, a + "o_proj.weight");
      ASSERT_EQ(ow.size(), 64u / tp);
      for (int64_t i = 0; i < 8; ++i)
        EXPECT_EQ(0, std::memcmp(ow.data() + i * (8 / tp), data_.at(a + "o_proj.weight").data() + i * 8 + r * (8 / tp),
                                 8 / tp));
      EXPECT_EQ(part_tensor(*part, a + "o_proj.deq_scale"), data_.at(a + "o_proj.deq_scale"));
      const auto qb = part_tensor(*part, a + "o_proj.quant_bias");
      if (r == 0) EXPECT_EQ(qb, data_.at(a + "o_proj.quant_bias"));
      else EXPECT_EQ(qb, std::vector<uint8_t>(qb.size(), 0));
      // Attention scales by head; vocabulary split; norms whole.
      EXPECT_EQ(part_tensor(*part, a + "fa_q.scale"), rows(a + "fa_q.scale", r * (4 / tp), (r + 1) * (4 / tp)));
      EXPECT_EQ(part_tensor(*part, a + "fa_k.scale"), rows(a + "fa_k.scale", kc, kc + 1));
      EXPECT_EQ(part_tensor(*part, "lm_head.weight"), rows("lm_head.weight", r * 16 / tp, (r + 1) * 16 / tp));
      EXPECT_EQ(part_tensor(*part, "model.norm.weight"), data_.at("model.norm.weight"));
      // The part's description types the packed names.
      ASSERT_TRUE(part->description());
      EXPECT_EQ(part->description()->type_of("model.layers.0.mlp.gate_up_proj.weight"), "W8A8");
      EXPECT_EQ(part->description()->top("fa_quant_type"), "FAQuant");
    }
    const std::string merged = root_ + "/merged" + std::to_string(tp);
    auto m = merge_to(out, merged);
    ASSERT_TRUE(m.ok()) << m.error().str();
    for (const char* f : {"quant_model_weight_w8a8.safetensors", "quant_model_weight_w8a8.safetensors.xxh3",
                          "quant_model_description.json", "config.json"})
      EXPECT_EQ(slurp(merged + "/" + f), slurp(model_ + "/" + f)) << f;
  }
}

TEST_F(ShardTest, OpenMergedGivesTheOriginalTensors) {
  auto in = open(model_);
  ShardOptions o;
  o.tp = 4;
  ASSERT_TRUE(shard_to(*in, root_ + "/om", o).ok());
  auto m = open_merged(root_ + "/om");
  ASSERT_TRUE(m.ok()) << m.error().str();
  ASSERT_EQ((*m)->tensors().size(), tensors_.size());
  for (const auto& t : tensors_) {
    const TensorEntry* e = (*m)->find(t.name);
    ASSERT_NE(e, nullptr) << t.name;
    const ByteView v = (*m)->data(*e);
    EXPECT_EQ(std::vector<uint8_t>(v.data, v.data + v.size), data_.at(t.name)) << t.name;
  }
  ASSERT_TRUE((*m)->description());
  EXPECT_EQ((*m)->description()->model_quant_type(), "W8A8");
  EXPECT_EQ((*m)->config().value("num_attention_heads", 0), 4);
  EXPECT_FALSE(open_merged(model_).ok());  // not part folders
}

TEST_F(ShardTest, CompressedRecipeRoundTrips) {
  auto in = open(model_);
  ShardOptions o;
  o.tp = 2;
  o.compress_metadata_above = 0;  // force st.shard.recipe.zst / st.shard.source.zst
  ASSERT_TRUE(shard_to(*in, root_ + "/z", o).ok());
  auto part = open(root_ + "/z/part1-of-2");
  const Metadata& md = part->header(0).metadata;
  EXPECT_EQ(md.count("st.shard.recipe"), 0u);
  ASSERT_EQ(md.count("st.shard.recipe.zst"), 1u);
  EXPECT_EQ(md.count("st.shard.source.zst"), 1u);
  part.reset();
  ASSERT_TRUE(merge_to(root_ + "/z", root_ + "/zm").ok());
  EXPECT_EQ(slurp(root_ + "/zm/quant_model_weight_w8a8.safetensors"), slurp(model_ + "/quant_model_weight_w8a8.safetensors"));
}

TEST_F(ShardTest, NoPackKeepsNames) {
  auto in = open(model_);
  ShardOptions o;
  o.tp = 2;
  o.pack = false;
  ASSERT_TRUE(shard_to(*in, root_ + "/np", o).ok());
  auto part = open(root_ + "/np/part1-of-2");
  EXPECT_NE(part->find("model.layers.0.self_attn.q_proj.weight"), nullptr);
  EXPECT_EQ(part->find("model.layers.0.self_attn.query_key_value.weight"), nullptr);
  ASSERT_TRUE(merge_to(root_ + "/np", root_ + "/npm").ok());
  EXPECT_EQ(slurp(root_ + "/npm/quant_model_weight_w8a8.safetensors"), slurp(model_ + "/quant_model_weight_w8a8.safetensors"));
}

TEST_F(ShardTest, RefusalsLeaveNoOutput) {
  auto in = open(model_);
  ShardOptions o;
  o.tp = 3;
  auto r = shard_to(*in, root_ + "/three", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("4 attention heads"), std::string::npos) << r.error().message;
  EXPECT_NE(::access((root_ + "/three").c_str(), F_OK), 0);
  o.tp = 2;
  ASSERT_TRUE(shard_to(*in, root_ + "/two", o).ok());
  auto again = shard_to(*in, root_ + "/two", o);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::exists);
}

TEST_F(ShardTest, MergeRefusesTamperedParts) {
  auto in = open(model_);
  ShardOptions o;
  o.tp = 2;
  ASSERT_TRUE(shard_to(*in, root_ + "/p", o).ok());
  // Flip a byte of a replicated norm in part 1 (its offset found from the part's header).
  {
    auto part = open(root_ + "/p/part1-of-2");
    const TensorEntry* e = part->find("model.norm.weight");
    ASSERT_NE(e, nullptr);
    const uint64_t at = part->header(0).data_start() + e->info->begin;
    const std::string f = part->files()[0];
    part.reset();
    std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    io.read(&c, 1);
    c = static_cast<char>(c ^ 0x40);
    io.seekp(static_cast<std::streamoff>(at));
    io.write(&c, 1);
  }
  auto m = merge_to(root_ + "/p", root_ + "/m");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().tensor, "model.norm.weight");
  EXPECT_NE(::access((root_ + "/m").c_str(), F_OK), 0);
  // A missing part.
  remove_tree(root_ + "/p/part1-of-2");
  EXPECT_FALSE(merge_to(root_ + "/p", root_ + "/m").ok());
}

TEST_F(ShardTest, PackingNeedsEqualSharedScales) {
  // Give v_proj its own input_scale: q/k/v can no longer share one; packing is refused.
  auto ck = open(model_);
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors_) specs.push_back({t.name, t.dtype, t.shape});
  const std::string dir = root_ + "/odd";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  auto w = SafetensorsWriter::create(dir + "/quant_model_weight_w8a8.safetensors", specs, {});
  ASSERT_TRUE(w.ok());
  for (const auto& t : tensors_) {
    auto b = data_.at(t.name);
    if (t.name == "model.layers.0.self_attn.v_proj.input_scale") b[0] ^= 1;
    ASSERT_TRUE((*w)->write(t.name, b.data(), b.size()).ok());
  }
  ASSERT_TRUE((*w)->finish().ok());
  spit(dir + "/config.json", slurp(model_ + "/config.json"));
  spit(dir + "/" + kDescriptionFile, slurp(model_ + "/" + kDescriptionFile));
  auto in = open(dir);
  ShardOptions o;
  o.tp = 2;
  auto r = shard_to(*in, root_ + "/oddp", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("--no-pack"), std::string::npos) << r.error().message;
  o.pack = false;
  EXPECT_TRUE(shard_to(*in, root_ + "/oddp", o).ok());
}

}  // namespace
}  // namespace st
