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

// The rule each file breaks, as the error message must name it (mapped-file reader).
const std::map<std::string, std::string>& expected_messages() {
  static const std::map<std::string, std::string> m = {
      {"empty.safetensors", "too small for a safetensors header"},
      {"too_short.safetensors", "too small for a safetensors header (5 bytes)"},
      {"header_too_large.safetensors", "exceeds the 100,000,000-byte limit"},
      {"header_length_u64_max.safetensors", "exceeds the 100,000,000-byte limit"},
      {"header_past_eof.safetensors", "runs past the end of the file"},
      {"non_utf8.safetensors", "not valid UTF-8 (byte 0xff"},
      {"invalid_json.safetensors", "header is not valid JSON"},
      {"trailing_garbage.safetensors", "expected end of input"},
      {"not_object.safetensors", "header is not a JSON object"},
      {"deep_nesting.safetensors", "nests deeper than the format allows"},
      {"entry_not_object.safetensors", "entry is not an object"},
      {"missing_dtype.safetensors", "missing string field 'dtype'"},
      {"unknown_dtype.safetensors", "unknown dtype 'F17'"},
      {"negative_dim.safetensors", "shape must hold non-negative integers"},
      {"non_integer_dim.safetensors", "shape must hold non-negative integers"},
      {"shape_overflow.safetensors", "element count overflows"},
      {"byte_length_mismatch.safetensors", "span 8 bytes but F32 3 elements need 12"},
      {"begin_after_end.safetensors", "begin is after end"},
      {"offsets_not_zero.safetensors", "data_offsets start at 8, not 0"},
      {"hole.safetensors", "hole in the buffer"},
      {"overlap.safetensors", "overlap the previous tensor"},
      {"trailing_bytes.safetensors", "4 trailing bytes after the last tensor"},
      {"truncated_buffer.safetensors", "file is truncated"},
      {"duplicate_names.safetensors", "duplicate tensor name 'a'"},
      {"metadata_not_string_map.safetensors", "__metadata__ value of 'format' is not a string"},
      {"metadata_not_object.safetensors", "__metadata__ is not an object"},
      {"offsets_arity.safetensors", "must be an array of two integers"},
      {"negative_offset.safetensors", "data_offsets must hold non-negative integers"},
      {"subbyte_partial.safetensors", "sub-byte dtype does not fill whole bytes"},
  };
  return m;
}

// File names listed in the corpus README ("NAME: what it breaks").
std::vector<std::string> readme_files() {
  std::ifstream in(corrupt_dir() + "/README");
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(".safetensors: ");
    if (colon != std::string::npos) names.push_back(line.substr(0, colon + 12));
  }
  return names;
}

TEST(Malformed, ReadmeListsEveryFileAndEveryFileHasARule) {
  const auto listed = readme_files();
  ASSERT_GE(listed.size(), 24u) << "README missing or short: " << corrupt_dir();
  std::set<std::string> on_disk;
  for (const auto& n : st_test::list_all(corrupt_dir()))
    if (n != "README") on_disk.insert(n);
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), on_disk);
  for (const auto& n : listed) EXPECT_TRUE(expected_messages().count(n)) << "no expected rule for " << n;
  for (const auto& [n, _] : expected_messages()) EXPECT_TRUE(on_disk.count(n)) << "missing fixture " << n;
}

TEST(Malformed, MappedReaderRefusesEachWithFileAndRule) {
  for (const auto& [name, message] : expected_messages()) {
    const std::string path = corrupt_dir() + "/" + name;
    auto f = st::SafetensorsFile::open(path);
    ASSERT_FALSE(f) << name << " was accepted";
    EXPECT_EQ(f.error().code, st::Errc::format) << name << ": " << f.error().str();
    EXPECT_EQ(f.error().file, path) << name;
    EXPECT_NE(f.error().message.find(message), std::string::npos)
        << name << ": got '" << f.error().message << "', want '" << message << "'";
    EXPECT_EQ(f.error().str().find('\n'), std::string::npos) << name << ": message is not one line";
  }
}

TEST(Malformed, StreamReaderRefusesEach) {
  for (const auto& [name, _] : expected_messages()) {
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
    EXPECT_FALSE(err.message.empty()) << name;
  }
}

TEST(Malformed, CheckpointOpenRefusesEachAsFileAndAsHfDirectory) {
  for (const auto& [name, message] : expected_messages()) {
    const std::string path = corrupt_dir() + "/" + name;
    auto c = st::Checkpoint::open(path);
    ASSERT_FALSE(c) << name;
    EXPECT_EQ(c.error().file, path);
    TempDir dir;
    st_test::write_bytes(dir / "model.safetensors", st_test::read_bytes(path));
    auto d = st::Checkpoint::open(dir.path());
    ASSERT_FALSE(d) << name;
    EXPECT_EQ(d.error().file, dir / "model.safetensors");
    EXPECT_NE(d.error().message.find(message), std::string::npos) << name << ": " << d.error().message;
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
  for (const std::string bad : {std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
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
