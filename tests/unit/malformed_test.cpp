// The corpus of malformed safetensors files (tests/fixtures/corrupt): every file is refused by
// the mapped reader, the stream reader and Checkpoint::open with an error naming the file and
// the rule it breaks; plus huge-header cases generated in code.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>

#include "libst/format/checkpoint.hpp"
#include "libst/format/safetensors.hpp"
#include "st_test_util.hpp"

namespace {

using st_test::TempDir;

std::string corrupt_dir() { return st_test::fixtures() + "/corrupt"; }

// The rule each file breaks, from the corpus README ("NAME: FAULT: \"FRAGMENT\": what it breaks"):
// the st::Fault the readers report and a fragment of the message they print.
struct Rule {
  std::string fault, fragment;
};
const std::map<std::string, Rule>& expected_rules() {
  static const std::map<std::string, Rule> rules = [] {
    std::map<std::string, Rule> m;
    std::ifstream in(corrupt_dir() + "/README");
    for (std::string line; std::getline(in, line);) {
      const auto a = line.find(".safetensors: "), b = line.find(": \"", a + 14), c = line.find("\": ", b + 3);
      if (a == std::string::npos || b == std::string::npos || c == std::string::npos) continue;
      m[line.substr(0, a + 12)] = Rule{line.substr(a + 14, b - a - 14), line.substr(b + 3, c - b - 3)};
    }
    return m;
  }();
  return rules;
}

TEST(Malformed, ReadmeListsEveryFileAndEveryFileHasARule) {
  ASSERT_GE(expected_rules().size(), 24u) << "README missing or short: " << corrupt_dir();
  std::set<std::string> listed, on_disk;
  for (const auto& [n, rule] : expected_rules()) {
    listed.insert(n);
    EXPECT_FALSE(rule.fragment.empty()) << n;
    bool known = false;
    for (int f = 1; f <= static_cast<int>(st::Fault::invalid_metadata); ++f)
      known = known || rule.fault == st::fault_name(static_cast<st::Fault>(f));
    EXPECT_TRUE(known) << n << ": unknown fault '" << rule.fault << "'";
  }
  for (const auto& n : st_test::list_all(corrupt_dir()))
    if (n != "README") on_disk.insert(n);
  EXPECT_EQ(listed, on_disk);
}

TEST(Malformed, MappedReaderRefusesEachWithFileAndRule) {
  for (const auto& [name, rule] : expected_rules()) {
    const std::string path = corrupt_dir() + "/" + name;
    auto f = st::SafetensorsFile::open(path);
    ASSERT_FALSE(f) << name << " was accepted";
    EXPECT_EQ(f.error().code, st::Errc::format) << name << ": " << f.error().str();
    EXPECT_EQ(st::fault_name(f.error().fault), rule.fault) << name << ": " << f.error().str();
    EXPECT_EQ(f.error().file, path) << name;
    EXPECT_NE(f.error().message.find(rule.fragment), std::string::npos)
        << name << ": got '" << f.error().message << "', want '" << rule.fragment << "'";
    EXPECT_EQ(f.error().str().find('\n'), std::string::npos) << name << ": message is not one line";
  }
}

TEST(Malformed, StreamReaderRefusesEach) {
  for (const auto& [name, rule] : expected_rules()) {
    FILE* in = std::fopen((corrupt_dir() + "/" + name).c_str(), "rb");
    ASSERT_NE(in, nullptr) << name;
    auto r = st::StreamReader::open(in, "<pipe>");
    bool refused = !r;
    st::Error err = refused ? r.error() : st::Error{};
    if (r) {
      std::vector<uint8_t> buf;
      for (int i = 0; i < 100; ++i) {
        auto t = (*r)->next(buf);
        if (!t) {
          refused = true;
          err = t.error();
          break;
        }
        if (!*t) break;
      }
    }
    std::fclose(in);
    EXPECT_TRUE(refused) << name << " was accepted as a stream";
    EXPECT_EQ(err.file, "<pipe>") << name;
    EXPECT_EQ(st::fault_name(err.fault), rule.fault) << name << ": " << err.str();
  }
}

TEST(Malformed, CheckpointOpenRefusesEachAsFileAndAsHfDirectory) {
  for (const auto& [name, rule] : expected_rules()) {
    const std::string path = corrupt_dir() + "/" + name;
    auto c = st::Checkpoint::open(path);
    ASSERT_FALSE(c) << name;
    EXPECT_EQ(c.error().file, path);
    TempDir dir;
    st_test::write_bytes(dir / "model.safetensors", st_test::read_bytes(path));
    auto d = st::Checkpoint::open(dir.path());
    ASSERT_FALSE(d) << name;
    EXPECT_EQ(d.error().file, dir / "model.safetensors");
    EXPECT_EQ(st::fault_name(d.error().fault), rule.fault) << name << ": " << d.error().str();
    EXPECT_NE(d.error().message.find(rule.fragment), std::string::npos) << name << ": " << d.error().message;
  }
}

// ---- huge headers, generated in code ----

std::string length_prefix(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out;
}

TEST(Malformed, HeaderLengthJustOverLimitInABigSparseFile) {
  // The file is long enough to hold the header: only the limit can refuse it.
  TempDir dir;
  const std::string path = dir / "huge.safetensors";
  st_test::write_bytes(path, length_prefix(st::kMaxHeaderBytes + 1) + "{}");
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(st::kMaxHeaderBytes + 64)), 0);
  auto f = st::SafetensorsFile::open(path);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("exceeds the 100,000,000-byte limit"), std::string::npos) << f.error().str();
}

TEST(Malformed, HeaderLengthAtLimitButPastEndOfFile) {
  TempDir dir;
  const std::string path = dir / "short.safetensors";
  st_test::write_bytes(path, length_prefix(st::kMaxHeaderBytes) + "{}");
  auto f = st::SafetensorsFile::open(path);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("runs past the end"), std::string::npos) << f.error().str();
}

TEST(Malformed, HeaderOfExactlyTheLimitParses) {
  std::string text = "{}";
  text.resize(st::kMaxHeaderBytes, ' ');
  auto h = st::parse_header(text, 0);
  ASSERT_TRUE(h) << h.error().str();
  EXPECT_TRUE(h->tensors.empty());
  EXPECT_EQ(h->header_bytes, st::kMaxHeaderBytes);
}

TEST(Malformed, StreamWithHugeHeaderLengthIsRefusedBeforeAllocating) {
  const std::string bytes = length_prefix(~uint64_t{0}) + "{}";
  FILE* in = fmemopen(const_cast<char*>(bytes.data()), bytes.size(), "rb");
  ASSERT_NE(in, nullptr);
  auto r = st::StreamReader::open(in, "<mem>");
  std::fclose(in);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("exceeds"), std::string::npos);
}

// A 104-byte stream declaring an 8 GiB tensor: the reader grows its buffer only as data arrives
// (it allocated the declared 8 GiB before reading).
TEST(Malformed, StreamTensorIsReadInBoundedChunks) {
  std::string header = R"({"big":{"dtype":"U8","shape":[8589934592],"data_offsets":[0,8589934592]}})";
  while ((8 + header.size()) % 8) header += ' ';
  const std::string bytes = length_prefix(header.size()) + header + std::string(24, 'x');
  FILE* in = fmemopen(const_cast<char*>(bytes.data()), bytes.size(), "rb");
  ASSERT_NE(in, nullptr);
  auto r = st::StreamReader::open(in, "<mem>");
  ASSERT_TRUE(r) << r.error().str();
  std::vector<uint8_t> buf;
  auto t = (*r)->next(buf);
  std::fclose(in);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message.find("stream ended inside tensor data (truncated)"), std::string::npos) << t.error().str();
  EXPECT_EQ(t.error().tensor, "big");
  EXPECT_LE(buf.capacity(), size_t(32) << 20);
}

TEST(Malformed, ManyTensorNamesDuplicatedLateAreFound) {
  std::string header = "{";
  for (int i = 0; i < 10000; ++i)
    header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" + std::to_string(i) +
              "," + std::to_string(i + 1) + "]},";
  header += "\"t5000\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[10000,10000]}}";
  auto h = st::parse_header(header, 10000);
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message.find("duplicate tensor name 't5000'"), std::string::npos) << h.error().str();
}

TEST(Malformed, InvalidUtf8FormsAreRefused) {
  // Overlong '/', a UTF-16 surrogate, a code point above U+10FFFF, a cut-off sequence.
  for (const std::string& bad : {std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
                                 std::string("\xe2\x82")}) {
    const std::string header = "{\"__metadata__\":{\"k\":\"" + bad + "\"}}";
    auto h = st::parse_header(header, 0);
    ASSERT_FALSE(h);
    EXPECT_NE(h.error().message.find("not valid UTF-8"), std::string::npos) << h.error().str();
  }
  // Valid multi-byte names are fine.
  auto ok = st::parse_header("{\"__metadata__\":{\"k\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}}", 0);
  EXPECT_TRUE(ok) << ok.error().str();
}

}  // namespace
