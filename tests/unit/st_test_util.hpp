// Small helpers shared by the libst unit tests: temporary directories, file bytes, fixtures.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/parallel.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/format/output.hpp"
#include "libst/format/safetensors.hpp"

namespace st_test {

inline std::string fixtures() {
  const char* env = std::getenv("ST_FIXTURES");
  return env && *env ? env : ST_FIXTURES;
}

// Sets st::threads() for a scope and restores the previous count.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(st::threads()) { st::set_threads(n); }
  ~ThreadCount() { st::set_threads(saved_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_;
};

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/st-unit-XXXXXX";
    if (!mkdtemp(tmpl.data())) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() { st::remove_tree(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool exists(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0;
}

inline void make_dir(const std::string& path) { ::mkdir(path.c_str(), 0755); }

// Names in a directory (hidden ones included), for "no temporary left behind" checks.
inline std::vector<std::string> list_all(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.emplace_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A safetensors file from raw header text and buffer bytes (header length = text size).
inline std::string raw_safetensors(const std::string& header, const std::string& buffer) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + buffer;
}

// One tensor of test data: spec plus bytes.
struct TestTensor {
  std::string name;
  st::DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Writes tensors (in the given order) with SafetensorsWriter; fails the test on error.
inline void write_tensors(const std::string& path, const std::vector<TestTensor>& tensors,
                          const st::Metadata& metadata = {}) {
  std::vector<st::TensorSpec> plan;
  for (const auto& t : tensors) plan.push_back({t.name, t.dtype, t.shape});
  auto w = st::SafetensorsWriter::create(path, plan, metadata);
  ASSERT_TRUE(w) << w.error().str();
  for (const auto& t : tensors) {
    auto s = (*w)->write(t.name, t.bytes.data(), t.bytes.size());
    ASSERT_TRUE(s) << s.error().str();
  }
  auto s = (*w)->finish();
  ASSERT_TRUE(s) << s.error().str();
}

// n bytes of a deterministic pattern seeded by seed.
inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

// The architecture of a fixture model (tests/fixtures/MODEL); a failure to open it fails the test.
inline st::Architecture open_arch(const std::string& model) {
  auto c = st::Checkpoint::open(fixtures() + "/" + model);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().str());
  auto a = st::Architecture::of(**c);
  EXPECT_TRUE(a.ok()) << (a.ok() ? "" : a.error().str());
  return std::move(a).value();
}

}  // namespace st_test
