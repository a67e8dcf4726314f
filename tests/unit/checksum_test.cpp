// XXH3 checksums: hex form, xxhsum lines, per-tensor metadata, and the writer's checksum option.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "libst/format/checksum.hpp"
#include "libst/format/output.hpp"
#include "libst/format/safetensors.hpp"

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/st-checksum-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { st::remove_tree(path); }
};

TEST(Checksum, KnownValue) {
  // xxhsum -H3 on a file holding "hello" prints 9555e8555c62dcfd (xxhsum 0.8.1).
  EXPECT_EQ(st::xxh3_hex(st::xxh3_64("hello", 5)), "9555e8555c62dcfd");
  st::Xxh3 inc;
  inc.update("he", 2);
  inc.update("llo", 3);
  EXPECT_EQ(inc.digest(), st::xxh3_64("hello", 5));
}

TEST(Checksum, HexRoundTrip) {
  for (uint64_t h : {0ull, 1ull, 0x0123456789abcdefull, ~0ull}) {
    const auto s = st::xxh3_hex(h);
    ASSERT_EQ(s.size(), 16u);
    EXPECT_EQ(st::parse_xxh3_hex(s), h);
  }
  EXPECT_EQ(st::parse_xxh3_hex("0123456789ABCDEF"), 0x0123456789abcdefull);
  EXPECT_FALSE(st::parse_xxh3_hex("0123456789abcde"));
  EXPECT_FALSE(st::parse_xxh3_hex("0123456789abcdeg"));
}

TEST(Checksum, ParsesBothLineStyles) {
  auto r = st::parse_checksum_file(
      "XXH3 (a.safetensors) = 9555e8555c62dcfd\n\nXXH3_0000000000000001  dir/b c.bin\r\n");
  ASSERT_TRUE(r) << r.error().str();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, "a.safetensors");
  EXPECT_EQ((*r)[0].hash, 0x9555e8555c62dcfdull);
  EXPECT_EQ((*r)[1].name, "dir/b c.bin");
  EXPECT_EQ((*r)[1].hash, 1u);
  for (const char* bad : {"9555e8555c62dcfd  a\n", "XXH3 (a) = 12\n", "XXH3 () = 9555e8555c62dcfd\n",
                          "XXH3_9555e8555c62dcfd a\n"}) {
    auto b = st::parse_checksum_file(bad);
    EXPECT_FALSE(b) << bad;
    if (!b) {
      EXPECT_NE(b.error().message.find("line 1"), std::string::npos);
    }
  }
}

TEST(Checksum, TensorMetadataRoundTrip) {
  std::map<std::string, uint64_t> m{{"a.weight", 5}, {"b\"quoted", ~0ull}};
  auto r = st::parse_tensor_checksums(st::tensor_checksums_value(m));
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(*r, m);
  EXPECT_FALSE(st::parse_tensor_checksums("{\"a\":\"xyz\"}"));
  EXPECT_FALSE(st::parse_tensor_checksums("[1]"));
  EXPECT_FALSE(st::parse_tensor_checksums("{"));
}

TEST(Checksum, ChecksumFileMatchesXxhsumFormat) {
  TempDir dir;
  const std::string f = dir.path + "/w.bin";
  std::ofstream(f, std::ios::binary) << "hello";
  ASSERT_TRUE(st::write_checksum_file(f));
  EXPECT_EQ(read_all(f + ".xxh3"), "XXH3 (w.bin) = 9555e8555c62dcfd\n");
  auto h = st::xxh3_file(f);
  ASSERT_TRUE(h);
  EXPECT_EQ(*h, st::xxh3_64("hello", 5));
  EXPECT_FALSE(st::xxh3_file(dir.path + "/missing"));
}

// Writes a small file with the writer's checksum option and checks both kinds of hash.
TEST(Checksum, WriterPatchesTensorHashesAndWritesChecksumFile) {
  TempDir dir;
  const std::string path = dir.path + "/quant_model_weight_w8a8.safetensors";
  std::vector<int8_t> w(96);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<int8_t>(i * 7 - 100);
  std::vector<float> s = {0.5f, 0.25f, 2.0f};
  std::vector<st::TensorSpec> plan = {{"l.weight", st::DType::I8, {3, 32}}, {"l.weight_scale", st::DType::F32, {3, 1}}};
  auto wr = st::SafetensorsWriter::create(path, plan, {{"other", "x"}}, st::WriterOptions{});
  ASSERT_TRUE(wr) << wr.error().str();
  ASSERT_TRUE((*wr)->write("l.weight", w.data(), w.size()));
  ASSERT_TRUE((*wr)->write("l.weight_scale", s.data(), s.size() * 4));
  ASSERT_TRUE((*wr)->finish());

  auto f = st::SafetensorsFile::open(path);
  ASSERT_TRUE(f) << f.error().str();
  const auto& md = (*f)->header().metadata;
  EXPECT_EQ(md.at("other"), "x");
  auto hashes = st::parse_tensor_checksums(md.at(st::kTensorChecksumKey));
  ASSERT_TRUE(hashes) << hashes.error().str();
  ASSERT_EQ(hashes->size(), 2u);
  for (const auto& t : (*f)->header().tensors) {
    const auto v = (*f)->data(t);
    EXPECT_EQ(hashes->at(t.name), st::xxh3_64(v.data, v.size)) << t.name;
  }
  auto lines = st::parse_checksum_file(read_all(path + ".xxh3"));
  ASSERT_TRUE(lines);
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].name, "quant_model_weight_w8a8.safetensors");
  EXPECT_EQ((*lines)[0].hash, *st::xxh3_file(path));
  // The stock tool agrees, when it is installed.
  if (std::system("command -v xxhsum >/dev/null 2>&1") == 0) {
    const std::string cmd = "cd '" + dir.path + "' && xxhsum -c quant_model_weight_w8a8.safetensors.xxh3 >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
}

TEST(Checksum, WriterWithoutOptionHasNoChecksums) {
  TempDir dir;
  const std::string path = dir.path + "/plain.safetensors";
  const float v = 1.0f;
  // A stale "st.xxh3" passed in (copied from an input) is dropped, not written unverified.
  auto wr = st::SafetensorsWriter::create(path, {{"x", st::DType::F32, {1}}}, {{st::kTensorChecksumKey, "{}"}});
  ASSERT_TRUE(wr);
  ASSERT_TRUE((*wr)->write("x", &v, 4));
  ASSERT_TRUE((*wr)->finish());
  auto f = st::SafetensorsFile::open(path);
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)->header().metadata.count(st::kTensorChecksumKey), 0u);
  EXPECT_NE(access((path + ".xxh3").c_str(), F_OK), 0);
}

TEST(Checksum, WriterAbandonedLeavesNoFiles) {
  TempDir dir;
  const std::string path = dir.path + "/x.safetensors";
  {
    auto wr = st::SafetensorsWriter::create(path, {{"x", st::DType::F32, {1}}}, {}, st::WriterOptions{});
    ASSERT_TRUE(wr);
  }
  EXPECT_NE(access(path.c_str(), F_OK), 0);
  EXPECT_NE(access((path + ".xxh3").c_str(), F_OK), 0);
}

}  // namespace
