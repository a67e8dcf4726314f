// Checkpoint::open for every layout (file, HF single, 3-shard HF with index, quantized, parts,
// stream), config and description exposure, and refusal of inconsistent shard indexes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "libst/format/checkpoint.hpp"
#include "st_test_util.hpp"

namespace {

using st::DType;
using st::Layout;
using st_test::TempDir;
using st_test::TestTensor;

std::string llama() { return st_test::fixtures() + "/llama-4m-fp16"; }

// All tensors of a safetensors file, in offset order.
std::vector<TestTensor> load_all(const std::string& path) {
  std::vector<TestTensor> out;
  auto f = st::SafetensorsFile::open(path);
  EXPECT_TRUE(f) << f.error().str();
  if (!f) return out;
  for (const auto& t : (*f)->header().tensors) {
    const auto v = (*f)->data(t);
    out.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(v.data, v.data + v.size)});
  }
  return out;
}

// Splits the llama fixture into n HF shards plus index in dir; returns the weight map.
nlohmann::json make_sharded(const std::string& dir, int n) {
  const auto all = load_all(llama() + "/model.safetensors");
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  uint64_t total = 0;
  for (int s = 0; s < n; ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n);
    std::vector<TestTensor> part;
    for (size_t i = static_cast<size_t>(s); i < all.size(); i += static_cast<size_t>(n)) {
      part.push_back(all[i]);
      index["weight_map"][all[i].name] = name;
      total += all[i].bytes.size();
    }
    st_test::write_tensors(dir + "/" + name, part, {{"format", "pt"}});
  }
  index["metadata"]["total_size"] = total;
  st_test::write_bytes(dir + "/model.safetensors.index.json", index.dump(2));
  st_test::write_bytes(dir + "/config.json", st_test::read_bytes(llama() + "/config.json"));
  return index;
}

void expect_same_tensors_as_fixture(const st::Checkpoint& c) {
  const auto all = load_all(llama() + "/model.safetensors");
  ASSERT_EQ(c.tensors().size(), all.size());
  for (const auto& t : all) {
    const st::TensorEntry* e = c.find(t.name);
    ASSERT_NE(e, nullptr) << t.name;
    EXPECT_EQ(e->info->dtype, t.dtype);
    EXPECT_EQ(e->info->shape, t.shape);
    const auto v = c.data(*e);
    ASSERT_EQ(v.size, t.bytes.size());
    EXPECT_EQ(std::memcmp(v.data, t.bytes.data(), v.size), 0) << t.name;
  }
}

TEST(Checkpoint, SingleFile) {
  auto c = st::Checkpoint::open(llama() + "/model.safetensors");
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ((*c)->layout(), Layout::file);
  EXPECT_EQ((*c)->files().size(), 1u);
  EXPECT_FALSE((*c)->has_config());  // a bare file carries no side files
  EXPECT_FALSE((*c)->description());
  expect_same_tensors_as_fixture(**c);
}

TEST(Checkpoint, HfDirectoryExposesConfigAndSideFiles) {
  auto c = st::Checkpoint::open(llama());
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ((*c)->layout(), Layout::hf_single);
  EXPECT_STREQ(st::layout_name((*c)->layout()), "hf");
  ASSERT_TRUE((*c)->has_config());
  EXPECT_EQ((*c)->config()["model_type"], "llama");
  EXPECT_EQ((*c)->config()["num_hidden_layers"], 4);
  EXPECT_TRUE((*c)->side_files().count("tokenizer.json"));
  EXPECT_TRUE((*c)->side_files().count("generation_config.json"));
  expect_same_tensors_as_fixture(**c);
}

TEST(Checkpoint, ThreeShardHfDirectoryWithIndex) {
  TempDir dir;
  make_sharded(dir.path(), 3);
  auto c = st::Checkpoint::open(dir.path());
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ((*c)->layout(), Layout::hf_sharded);
  ASSERT_EQ((*c)->files().size(), 3u);
  EXPECT_EQ((*c)->files()[0], dir / "model-00001-of-00003.safetensors");
  EXPECT_EQ((*c)->config()["hidden_size"], 256);
  expect_same_tensors_as_fixture(**c);
  // Each tensor reports the shard it lives in.
  const auto* e = (*c)->find("lm_head.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ((*c)->files()[e->file], dir / "model-00001-of-00003.safetensors");
}

TEST(Checkpoint, ForEachVisitsEveryTensorInStorageOrder) {
  TempDir dir;
  make_sharded(dir.path(), 3);
  auto c = st::Checkpoint::open(dir.path());
  ASSERT_TRUE(c);
  size_t n = 0;
  size_t last_file = 0;
  auto s = (*c)->for_each([&](const st::TensorEntry& e, st::ByteView v) -> st::Status {
    EXPECT_GE(e.file, last_file);
    last_file = e.file;
    EXPECT_EQ(v.size, e.info->nbytes());
    ++n;
    return {};
  });
  EXPECT_TRUE(s);
  EXPECT_EQ(n, (*c)->tensors().size());
  // read_f32 converts F16
  auto w = (*c)->read_f32("model.norm.weight");
  ASSERT_TRUE(w) << w.error().str();
  EXPECT_EQ(w->size(), 256u);
  EXPECT_FALSE((*c)->read_f32("no.such.tensor"));
}

TEST(Checkpoint, ForEachStopsAtTheFirstError) {
  auto c = st::Checkpoint::open(llama());
  ASSERT_TRUE(c);
  int n = 0;
  auto s = (*c)->for_each([&](const st::TensorEntry& e, st::ByteView) -> st::Status {
    if (++n == 3) return st::make_error(st::Errc::numeric, "stop", "", e.name());
    return {};
  });
  ASSERT_FALSE(s);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(s.error().message, "stop");
}

// ---- index inconsistencies ----

struct IndexCase {
  const char* what;
  std::function<void(nlohmann::json&, const std::string&)> edit;
  const char* message;
};

TEST(Checkpoint, InconsistentIndexesAreRefused) {
  const std::vector<IndexCase> cases = {
      {"tensor listed in the wrong shard",
       [](nlohmann::json& j, const std::string&) { j["weight_map"]["lm_head.weight"] = "model-00002-of-00003.safetensors"; },
       "index puts the tensor in"},
      {"tensor listed but in no shard",
       [](nlohmann::json& j, const std::string&) { j["weight_map"]["ghost.weight"] = "model-00001-of-00003.safetensors"; },
       "does not hold"},
      {"tensor in a shard but not listed",
       [](nlohmann::json& j, const std::string&) { j["weight_map"].erase("lm_head.weight"); },
       "tensors the index does not list"},
      {"shard file missing",
       [](nlohmann::json& j, const std::string&) { j["weight_map"]["lm_head.weight"] = "model-00009-of-00009.safetensors"; },
       "cannot open"},
      {"weight_map missing", [](nlohmann::json& j, const std::string&) { j.erase("weight_map"); }, "weight_map"},
      {"weight_map value not a string",
       [](nlohmann::json& j, const std::string&) { j["weight_map"]["lm_head.weight"] = 3; }, "not a file name"},
  };
  for (const auto& k : cases) {
    TempDir dir;
    auto index = make_sharded(dir.path(), 3);
    k.edit(index, dir.path());
    st_test::write_bytes(dir / "model.safetensors.index.json", index.dump());
    auto c = st::Checkpoint::open(dir.path());
    ASSERT_FALSE(c) << k.what;
    EXPECT_NE(c.error().message.find(k.message), std::string::npos) << k.what << ": " << c.error().str();
    EXPECT_FALSE(c.error().file.empty()) << k.what;
  }
}

TEST(Checkpoint, IndexThatIsNotJsonIsRefused) {
  TempDir dir;
  make_sharded(dir.path(), 3);
  st_test::write_bytes(dir / "model.safetensors.index.json", "{not json");
  auto c = st::Checkpoint::open(dir.path());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().file, dir / "model.safetensors.index.json");
}

TEST(Checkpoint, TensorInTwoShardsIsRefused) {
  TempDir dir;
  auto index = make_sharded(dir.path(), 2);
  // Rewrite shard 2 with an extra copy of a shard-1 tensor.
  auto shard2 = load_all(dir / "model-00002-of-00002.safetensors");
  shard2.push_back({"lm_head.weight", DType::F16, {8192, 256}, std::vector<uint8_t>(8192 * 256 * 2)});
  st_test::write_tensors(dir / "model-00002-of-00002.safetensors", shard2);
  auto c = st::Checkpoint::open(dir.path());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().tensor, "lm_head.weight");
}

// ---- quantized and parts ----

void make_quantized(const std::string& dir, const std::string& model_quant_type, uint8_t fill) {
  st_test::make_dir(dir);
  st_test::write_tensors(dir + "/quant_model_weight_w8a8.safetensors",
                         {{"model.layers.0.mlp.down_proj.weight", DType::I8, {4, 8}, std::vector<uint8_t>(32, fill)},
                          {"model.layers.0.mlp.down_proj.deq_scale", DType::I64, {4}, std::vector<uint8_t>(32, 0)},
                          {"model.norm.weight", DType::F16, {8}, std::vector<uint8_t>(16, 0)}});
  nlohmann::ordered_json d;
  d["model_quant_type"] = model_quant_type;
  d["model.layers.0.mlp.down_proj.weight"] = "W8A8";
  d["model.layers.0.mlp.down_proj.deq_scale"] = "W8A8";
  d["model.norm.weight"] = "FLOAT";
  st_test::write_bytes(dir + "/quant_model_description.json", d.dump(2));
  st_test::write_bytes(dir + "/config.json", R"({"model_type": "llama", "hidden_size": 8})");
}

TEST(Checkpoint, QuantizedDirectoryExposesItsDescription) {
  TempDir dir;
  make_quantized(dir / "q", "W8A8", 1);
  auto c = st::Checkpoint::open(dir / "q");
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ((*c)->layout(), Layout::quantized);
  ASSERT_TRUE((*c)->description());
  EXPECT_EQ((*c)->description()->model_quant_type(), "W8A8");
  EXPECT_EQ((*c)->description()->type_of("model.norm.weight"), "FLOAT");
  EXPECT_EQ((*c)->config()["hidden_size"], 8);
  EXPECT_EQ((*c)->tensors().size(), 3u);
  EXPECT_TRUE((*c)->side_files().count("quant_model_description.json"));
}

TEST(Checkpoint, QuantizedDirectoryWithoutWeightsOrWithBadDescriptionIsRefused) {
  TempDir dir;
  make_quantized(dir / "q", "W8A8", 1);
  ::unlink((dir / "q/quant_model_weight_w8a8.safetensors").c_str());
  auto c = st::Checkpoint::open(dir / "q");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("quant_model_weight"), std::string::npos);
  make_quantized(dir / "r", "W8A8", 1);
  st_test::write_bytes(dir / "r/quant_model_description.json", R"({"x.weight": "W8A8"})");
  auto r = st::Checkpoint::open(dir / "r");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("model_quant_type"), std::string::npos);
  EXPECT_EQ(r.error().file, dir / "r/quant_model_description.json");
}

TEST(Checkpoint, PartsDirectoryInNumericOrder) {
  TempDir dir;
  for (int i = 0; i < 10; ++i) make_quantized(dir / ("part" + std::to_string(i) + "-of-10"), "W8A8", uint8_t(i + 1));
  auto c = st::Checkpoint::open(dir.path());
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ((*c)->layout(), Layout::parts);
  ASSERT_EQ((*c)->parts().size(), 10u);
  for (int i = 0; i < 10; ++i) {
    const auto& p = *(*c)->parts()[i];
    EXPECT_EQ(p.path(), dir / ("part" + std::to_string(i) + "-of-10"));
    const auto* e = p.find("model.layers.0.mlp.down_proj.weight");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(p.data(*e).data[0], i + 1);
  }
  ASSERT_TRUE((*c)->description());
  EXPECT_EQ((*c)->config()["model_type"], "llama");
}

TEST(Checkpoint, EmptyOrMissingPathsAreRefused) {
  TempDir dir;
  auto e = st::Checkpoint::open(dir.path());
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("no checkpoint here"), std::string::npos);
  auto m = st::Checkpoint::open(dir / "missing.safetensors");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, st::Errc::io);
  EXPECT_EQ(m.error().file, dir / "missing.safetensors");
}

// ---- stream ("-") ----

// Points stdin at a file for the duration of a test.
struct StdinFrom {
  explicit StdinFrom(const std::string& path) { EXPECT_NE(std::freopen(path.c_str(), "rb", stdin), nullptr); }
  ~StdinFrom() { std::freopen("/dev/null", "rb", stdin); }
};

std::string stream_file(const TempDir& dir) {
  const std::string path = dir / "stream.safetensors";
  auto all = load_all(llama() + "/model.safetensors");
  all.resize(5);
  st_test::write_tensors(path, all,
                         {{"st.file.config.json", st_test::read_bytes(llama() + "/config.json")},
                          {"st.file.quant_model_description.json",
                           R"({"model_quant_type": "FLOAT", "lm_head.weight": "FLOAT"})"}});
  return path;
}

TEST(Checkpoint, StreamOnePassCarriesSideFilesInMetadata) {
  TempDir dir;
  StdinFrom in(stream_file(dir));
  st::Checkpoint::Options o;
  o.random_access = false;
  auto c = st::Checkpoint::open("-", o);
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ((*c)->layout(), Layout::stream);
  EXPECT_EQ((*c)->files(), std::vector<std::string>{"<stdin>"});
  EXPECT_EQ((*c)->config()["model_type"], "llama");
  ASSERT_TRUE((*c)->description());
  EXPECT_EQ((*c)->description()->type_of("lm_head.weight"), "FLOAT");
  std::vector<std::string> names;
  auto s = (*c)->for_each([&](const st::TensorEntry& e, st::ByteView v) -> st::Status {
    EXPECT_EQ(v.size, e.info->nbytes());
    names.push_back(e.name());
    return {};
  });
  ASSERT_TRUE(s) << s.error().str();
  EXPECT_EQ(names.size(), 5u);
}

TEST(Checkpoint, StreamWithRandomAccessIsSpooled) {
  TempDir dir;
  const std::string path = stream_file(dir);
  StdinFrom in(path);
  auto c = st::Checkpoint::open("-");
  ASSERT_TRUE(c) << c.error().str();
  const auto expect = load_all(path);
  for (const auto& t : expect) {
    const auto* e = (*c)->find(t.name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(std::memcmp((*c)->data(*e).data, t.bytes.data(), t.bytes.size()), 0);
  }
}

TEST(Checkpoint, CorruptStreamNamesStdin) {
  TempDir dir;
  st_test::write_bytes(dir / "bad", "\x05\x00\x00");
  StdinFrom in(dir / "bad");
  auto c = st::Checkpoint::open("-");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().file, "<stdin>");
}

}  // namespace

namespace {

// A quantized directory whose weights are split into two files with an index.
void make_quantized_indexed(const std::string& dir) {
  make_quantized(dir, "W8A8", 1);
  const std::string whole = dir + "/quant_model_weight_w8a8.safetensors";
  auto all = load_all(whole);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });  // norm last
  ::unlink(whole.c_str());
  const std::string f1 = "quant_model_weight_w8a8-00001-of-00002.safetensors";
  const std::string f2 = "quant_model_weight_w8a8-00002-of-00002.safetensors";
  st_test::write_tensors(dir + "/" + f1, {all[0], all[1]});
  st_test::write_tensors(dir + "/" + f2, {all[2]});
  nlohmann::json index = {{"metadata", {{"total_size", 64}}},
                          {"weight_map", {{all[0].name, f1}, {all[1].name, f1}, {all[2].name, f2}}}};
  st_test::write_bytes(dir + "/quant_model_weight_w8a8.safetensors.index.json", index.dump());
}

TEST(Checkpoint, QuantizedDirectorySplitWithAnIndex) {
  TempDir dir;
  make_quantized_indexed(dir / "q");
  // A stale unindexed weight file is not picked up when an index says what belongs.
  st_test::write_tensors(dir / "q/quant_model_weight_w8a8_old.safetensors", {{"stale", DType::U8, {1}, {1}}});
  auto c = st::Checkpoint::open(dir / "q");
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ((*c)->layout(), Layout::quantized);
  EXPECT_EQ((*c)->files().size(), 2u);
  EXPECT_EQ((*c)->tensors().size(), 3u);
  EXPECT_EQ((*c)->find("stale"), nullptr);
}

TEST(Checkpoint, QuantizedIndexInconsistenciesAreRefused) {
  TempDir dir;
  make_quantized_indexed(dir / "q");
  const std::string index_path = dir / "q/quant_model_weight_w8a8.safetensors.index.json";
  auto index = nlohmann::json::parse(st_test::read_bytes(index_path));
  index["weight_map"]["model.norm.weight"] = "quant_model_weight_w8a8-00001-of-00002.safetensors";
  st_test::write_bytes(index_path, index.dump());
  auto c = st::Checkpoint::open(dir / "q");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().file, index_path);
  EXPECT_EQ(c.error().tensor, "model.norm.weight");
  // An index may only name files beside it.
  index["weight_map"]["model.norm.weight"] = "../../etc/passwd";
  st_test::write_bytes(index_path, index.dump());
  auto t = st::Checkpoint::open(dir / "q");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("is not a plain file name"), std::string::npos) << t.error().str();
  // Two indexes: ambiguous.
  make_quantized_indexed(dir / "r");
  st_test::write_bytes(dir / "r/quant_model_weight_w8a8_dynamic.safetensors.index.json", "{}");
  auto r = st::Checkpoint::open(dir / "r");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("more than one"), std::string::npos);
}

}  // namespace

namespace {

TEST(Checkpoint, HugePartNumbersAreRefusedNamingTheFolder) {
  TempDir dir;
  make_quantized(dir / "part0-of-1", "W8A8", 1);
  st_test::make_dir(dir / "part99999999999999999999-of-2");
  auto c = st::Checkpoint::open(dir.path());
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().file, dir / "part99999999999999999999-of-2");
  EXPECT_NE(c.error().message.find("rank 99999999999999999999 is out of range"), std::string::npos) << c.error().str();
}

// Sets that st-verify once passed but merge and eval refuse: one rule refuses them everywhere.
TEST(Checkpoint, PartSetsBreakingTheRuleAreRefused) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"part00-of-2", "part1-of-2"}, "expected 'part0-of-2'"},
      {{"part0-of-2", "part00-of-2", "part1-of-2"}, "expected 'part0-of-2'"},
      {{"part1-of-2", "part2-of-2"}, "rank 2 is out of range"},
      {{"part0-of-2"}, "part folder missing (1 of 2 present)"},
      {{"part0-of-2", "part1-of-3"}, "part folder of a different split"},
      {{"part0-of-0"}, "part count 0 is not in 1..65536"},
      {{"part0-of-999999"}, "part count 999999 is not in 1..65536"},
      {{"part0-of-02", "part1-of-02"}, "expected 'part0-of-2'"},
  };
  for (const auto& [folders, message] : cases) {
    TempDir dir;
    for (const auto& f : folders) make_quantized(dir / f, "W8A8", 1);
    auto c = st::Checkpoint::open(dir.path());
    ASSERT_FALSE(c) << folders[0];
    EXPECT_NE(c.error().message.find(message), std::string::npos) << c.error().str();
    EXPECT_EQ(c.error().file.rfind(dir.path() + "/part", 0), 0u) << c.error().str();
  }
}

}  // namespace
