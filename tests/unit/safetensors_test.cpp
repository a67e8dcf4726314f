// Safetensors reader, writer and stream reader: round trips, padding, atomicity, pipes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "libst/format/safetensors.hpp"
#include "st_test_util.hpp"

namespace {

using st::DType;
using st_test::TempDir;
using st_test::TestTensor;

std::vector<TestTensor> sample_tensors() {
  return {
      {"model.embed.weight", DType::F16, {4, 3}, st_test::pattern(24, 1)},
      {"scalar", DType::F32, {}, st_test::pattern(4, 2)},           // 0-rank: one element
      {"empty", DType::BF16, {0, 5}, {}},                            // zero elements
      {"empty.too", DType::I64, {3, 0}, {}},                         // zero elements, different dtype
      {"ints", DType::I8, {5}, st_test::pattern(5, 3)},              // 5 bytes: next offset unaligned
      {"packed", DType::F4, {2, 3}, st_test::pattern(3, 4)},         // sub-byte, fills 3 bytes
      {"wide", DType::I64, {2, 2}, st_test::pattern(32, 5)},
      {"ünïcödé.name", DType::U8, {1}, st_test::pattern(1, 6)},
  };
}

TEST(Safetensors, WriterRoundTripThroughMappedReader) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  const auto tensors = sample_tensors();
  st_test::write_tensors(path, tensors, {{"format", "pt"}, {"note", "a \"quoted\" value"}});
  auto f = st::SafetensorsFile::open(path);
  ASSERT_TRUE(f) << f.error().str();
  const st::Header& h = (*f)->header();
  EXPECT_EQ(h.metadata.at("format"), "pt");
  EXPECT_EQ(h.metadata.at("note"), "a \"quoted\" value");
  ASSERT_EQ(h.tensors.size(), tensors.size());
  uint64_t total = 0;
  for (const auto& t : tensors) {
    const st::TensorInfo* info = h.find(t.name);
    ASSERT_NE(info, nullptr) << t.name;
    EXPECT_EQ(info->dtype, t.dtype) << t.name;
    EXPECT_EQ(info->shape, t.shape) << t.name;
    EXPECT_EQ(info->nbytes(), t.bytes.size()) << t.name;
    const st::ByteView v = (*f)->data(*info);
    ASSERT_EQ(v.size, t.bytes.size());
    EXPECT_TRUE(v.size == 0 || std::memcmp(v.data, t.bytes.data(), v.size) == 0) << t.name;
    total += t.bytes.size();
  }
  EXPECT_EQ(h.find("scalar")->numel(), 1u);
  EXPECT_EQ(h.find("empty")->numel(), 0u);
  EXPECT_EQ(h.buffer_bytes, total);
  EXPECT_EQ((*f)->file_bytes(), 8 + h.header_bytes + total);
  EXPECT_EQ(h.find("nope"), nullptr);
}

// Writes tensors to path in write_order (names), planned in tensors' order, with the given layout.
void write_in_order(const std::string& path, const std::vector<TestTensor>& tensors, const std::vector<size_t>& write_order,
                    st::TensorOrder order) {
  std::vector<st::TensorSpec> plan;
  for (const auto& t : tensors) plan.push_back({t.name, t.dtype, t.shape});
  st::WriterOptions o;
  o.checksums = false;
  o.order = order;
  auto w = st::SafetensorsWriter::create(path, plan, {{"format", "pt"}}, o);
  ASSERT_TRUE(w) << w.error().str();
  for (const size_t i : write_order) ASSERT_TRUE((*w)->write(tensors[i].name, tensors[i].bytes.data(), tensors[i].bytes.size()));
  ASSERT_TRUE((*w)->finish());
}

TEST(Safetensors, WriterLaysTensorsOutAsHfSafetensorsDoes) {
  // safetensors/src/tensor.rs prepare(): descending dtype, then name; header padded to 8, no holes.
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  st_test::write_tensors(path, sample_tensors());
  auto f = st::SafetensorsFile::open(path);
  ASSERT_TRUE(f);
  const std::vector<std::string> want = {"empty.too", "wide", "scalar", "empty", "model.embed.weight", "ints",
                                         "ünïcödé.name", "packed"};
  const auto& ts = (*f)->header().tensors;
  ASSERT_EQ(ts.size(), want.size());
  EXPECT_EQ((*f)->header().data_start() % 8, 0u);
  uint64_t expect = 0;
  for (size_t i = 0; i < ts.size(); ++i) {
    EXPECT_EQ(ts[i].name, want[i]);
    EXPECT_EQ(ts[i].begin, expect) << ts[i].name;
    const unsigned bytes = st::dtype_bits(ts[i].dtype) / 8;
    if (bytes) {
      EXPECT_EQ(((*f)->header().data_start() + ts[i].begin) % bytes, 0u) << ts[i].name;
    }
    expect = ts[i].end;
  }
}

TEST(Safetensors, WriterKeepsPlanOrderWhenAsked) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  const auto tensors = sample_tensors();
  write_in_order(path, tensors, {0, 1, 2, 3, 4, 5, 6, 7}, st::TensorOrder::planned);
  auto f = st::SafetensorsFile::open(path);
  ASSERT_TRUE(f);
  uint64_t expect = 0;
  for (const auto& t : tensors) {
    const auto* info = (*f)->header().find(t.name);
    EXPECT_EQ(info->begin, expect) << t.name;
    expect = info->end;
  }
}

TEST(Safetensors, WriterTakesTensorsInAnyOrderToAFileAndToAStream) {
  TempDir dir;
  const auto tensors = sample_tensors();
  write_in_order(dir / "in_order.safetensors", tensors, {0, 1, 2, 3, 4, 5, 6, 7}, st::TensorOrder::aligned);
  write_in_order(dir / "reversed.safetensors", tensors, {7, 6, 5, 4, 3, 2, 1, 0}, st::TensorOrder::aligned);
  const std::string want = st_test::read_bytes(dir / "in_order.safetensors");
  EXPECT_EQ(st_test::read_bytes(dir / "reversed.safetensors"), want);
  // To stdout: tensors ahead of their turn wait in a temporary file; the bytes are the same.
  for (const std::vector<size_t>& order : {std::vector<size_t>{4, 0, 7, 2, 1, 6, 3, 5}, {7, 6, 5, 4, 3, 2, 1, 0}}) {
    const std::string path = dir / "stream.safetensors";
    fflush(stdout);
    const int saved = dup(1);
    FILE* out = fopen(path.c_str(), "wb");
    ASSERT_TRUE(out);
    dup2(fileno(out), 1);
    write_in_order("-", tensors, order, st::TensorOrder::aligned);
    dup2(saved, 1);
    close(saved);
    fclose(out);
    EXPECT_EQ(st_test::read_bytes(path), want);
  }
}

TEST(Safetensors, HeaderIsPaddedToAMultipleOf8) {
  TempDir dir;
  for (size_t len = 1; len <= 16; ++len) {
    const std::string path = dir / ("p" + std::to_string(len) + ".safetensors");
    st_test::write_tensors(path, {{std::string(len, 'n'), DType::U8, {1}, {7}}});
    const std::string bytes = st_test::read_bytes(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[i]);
    EXPECT_EQ((8 + n) % 8, 0u) << len;
    // Padding is spaces after the JSON object.
    const std::string text = bytes.substr(8, n);
    EXPECT_EQ(text.find_last_not_of(' '), text.rfind('}')) << text;
    EXPECT_EQ(bytes.size(), 8 + n + 1);
  }
}

TEST(Safetensors, SerializeHeaderParsesBack) {
  std::vector<st::TensorInfo> ts(2);
  ts[0].name = "a";
  ts[0].dtype = DType::F32;
  ts[0].shape = {2};
  ts[0].begin = 0;
  ts[0].end = 8;
  ts[1].name = "b\n\"c";
  ts[1].dtype = DType::BOOL;
  ts[1].shape = {};
  ts[1].begin = 8;
  ts[1].end = 9;
  const std::string text = st::serialize_header(ts, {{"k", "v"}});
  EXPECT_EQ(text.size() % 8, 0u);
  auto h = st::parse_header(text, 9);
  ASSERT_TRUE(h) << h.error().str();
  ASSERT_NE(h->find("b\n\"c"), nullptr);
  EXPECT_EQ(h->find("b\n\"c")->dtype, DType::BOOL);
  EXPECT_EQ(h->metadata.at("k"), "v");
  // buffer size is checked when given
  EXPECT_FALSE(st::parse_header(text, 10));
  EXPECT_FALSE(st::parse_header(text, 8));
  EXPECT_TRUE(st::parse_header(text, std::nullopt));
}

TEST(Safetensors, EmptyCheckpointIsValid) {
  TempDir dir;
  const std::string path = dir / "none.safetensors";
  st_test::write_tensors(path, {});
  auto f = st::SafetensorsFile::open(path);
  ASSERT_TRUE(f) << f.error().str();
  EXPECT_TRUE((*f)->header().tensors.empty());
}

TEST(Safetensors, WriterRefusesBadPlansAndBadWrites) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  EXPECT_FALSE(st::SafetensorsWriter::create(path, {{"a", DType::F32, {1}}, {"a", DType::F32, {1}}}, {}));
  EXPECT_FALSE(st::SafetensorsWriter::create(path, {{"a", DType::F32, {-1}}}, {}));
  EXPECT_FALSE(st::SafetensorsWriter::create(path, {{"a", DType::F32, {INT64_MAX, INT64_MAX}}}, {}));
  EXPECT_FALSE(st::SafetensorsWriter::create(path, {{"a", DType::F4, {3}}}, {}));
  auto w = st::SafetensorsWriter::create(path, {{"a", DType::F32, {2}}, {"b", DType::U8, {1}}}, {});
  ASSERT_TRUE(w);
  const float two[2] = {1, 2};
  EXPECT_FALSE((*w)->write("a", two, 4));  // wrong size
  EXPECT_TRUE((*w)->write("a", two, 8));
  EXPECT_FALSE((*w)->write("a", two, 8));  // twice
  EXPECT_FALSE((*w)->finish());            // "b" missing
  EXPECT_FALSE(st_test::exists(path));
  const uint8_t one = 1;
  EXPECT_TRUE((*w)->write("b", &one, 1));
  EXPECT_FALSE((*w)->write("c", &one, 1)); // not in the plan
  EXPECT_TRUE((*w)->finish());
  EXPECT_TRUE(st_test::exists(path));
}

TEST(Safetensors, AbandonedWriterLeavesNoFinalFileAndNoTemporary) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  {
    auto w = st::SafetensorsWriter::create(path, {{"a", DType::U8, {4}}, {"b", DType::U8, {4}}}, {});
    ASSERT_TRUE(w);
    const uint8_t four[4] = {1, 2, 3, 4};
    ASSERT_TRUE((*w)->write("a", four, 4));
    // While writing, only a hidden temporary exists, never the final name.
    EXPECT_FALSE(st_test::exists(path));
    EXPECT_EQ(st_test::list_all(dir.path()).size(), 1u);
  }
  EXPECT_FALSE(st_test::exists(path));
  EXPECT_TRUE(st_test::list_all(dir.path()).empty());
}

TEST(Safetensors, FailedWriteKeepsAnExistingFileIntact) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  st_test::write_tensors(path, {{"old", DType::U8, {1}, {9}}});
  const std::string before = st_test::read_bytes(path);
  {
    auto w = st::SafetensorsWriter::create(path, {{"new", DType::U8, {2}}}, {});
    ASSERT_TRUE(w);
    const uint8_t b[2] = {1, 2};
    EXPECT_FALSE((*w)->write("new", b, 1));
    EXPECT_FALSE((*w)->finish());
  }
  EXPECT_EQ(st_test::read_bytes(path), before);
  EXPECT_EQ(st_test::list_all(dir.path()).size(), 1u);
}

TEST(Safetensors, WriterIntoMissingDirectoryIsAnIoError) {
  auto w = st::SafetensorsWriter::create("/nonexistent-dir-st/x.safetensors", {{"a", DType::U8, {1}}}, {});
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code, st::Errc::io);
  EXPECT_EQ(w.error().file, "/nonexistent-dir-st/x.safetensors");
}

TEST(Safetensors, OpenErrorsNameTheFile) {
  auto missing = st::SafetensorsFile::open("/nonexistent/st.safetensors");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, st::Errc::io);
  EXPECT_EQ(missing.error().file, "/nonexistent/st.safetensors");
  TempDir dir;
  auto d = st::SafetensorsFile::open(dir.path());
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("directory"), std::string::npos);
}

TEST(Safetensors, ReleaseKeepsDataReadable) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  const auto tensors = sample_tensors();
  st_test::write_tensors(path, tensors);
  auto f = st::SafetensorsFile::open(path);
  ASSERT_TRUE(f);
  for (const auto& t : tensors) {
    const auto* info = (*f)->header().find(t.name);
    (*f)->release(*info);
    const auto v = (*f)->data(*info);
    EXPECT_TRUE(v.size == 0 || std::memcmp(v.data, t.bytes.data(), v.size) == 0);
  }
}

// Feeds bytes into a pipe from a thread (the reader sees a non-seekable stream).
struct PipeFeeder {
  explicit PipeFeeder(std::string bytes) : data(std::move(bytes)) {
    std::signal(SIGPIPE, SIG_IGN);
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    in = fdopen(fds[0], "rb");
    const int wfd = fds[1];
    writer = std::thread([this, wfd] {
      size_t done = 0;
      while (done < data.size()) {
        const ssize_t n = ::write(wfd, data.data() + done, std::min<size_t>(4096, data.size() - done));
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
      ::close(wfd);
    });
  }
  ~PipeFeeder() {
    std::fclose(in);  // a writer blocked on a full pipe gets EPIPE and stops
    writer.join();
  }
  std::string data;
  FILE* in = nullptr;
  std::thread writer;
};

TEST(Safetensors, StreamReaderReadsAPipeInOrder) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  const auto tensors = sample_tensors();
  st_test::write_tensors(path, tensors, {{"st.file.config.json", "{}"}});
  PipeFeeder feed(st_test::read_bytes(path));
  auto r = st::StreamReader::open(feed.in, "<stdin>");
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ((*r)->header().metadata.at("st.file.config.json"), "{}");
  std::vector<uint8_t> buf;
  size_t i = 0;
  for (;; ++i) {
    auto t = (*r)->next(buf);
    ASSERT_TRUE(t) << t.error().str();
    if (!*t) break;
    ASSERT_LT(i, tensors.size());
    EXPECT_EQ((*t)->name, (*r)->header().tensors[i].name);  // offset order
    const auto want = std::find_if(tensors.begin(), tensors.end(), [&](const TestTensor& x) { return x.name == (*t)->name; });
    ASSERT_NE(want, tensors.end());
    EXPECT_EQ(buf, want->bytes) << want->name;
  }
  EXPECT_EQ(i, tensors.size());
}

TEST(Safetensors, StreamReaderRefusesTruncationAndTrailingBytes) {
  TempDir dir;
  const std::string path = dir / "x.safetensors";
  st_test::write_tensors(path, {{"a", DType::U8, {16}, st_test::pattern(16, 9)}});
  const std::string good = st_test::read_bytes(path);
  for (const std::string& bytes : {good.substr(0, good.size() - 1), good + "x"}) {
    FILE* in = fmemopen(const_cast<char*>(bytes.data()), bytes.size(), "rb");
    auto r = st::StreamReader::open(in, "<mem>");
    ASSERT_TRUE(r);
    std::vector<uint8_t> buf;
    bool failed = false;
    for (int k = 0; k < 3 && !failed; ++k) {
      auto t = (*r)->next(buf);
      if (!t) {
        failed = true;
        EXPECT_EQ(t.error().file, "<mem>");
      } else if (!*t) {
        break;
      }
    }
    EXPECT_TRUE(failed) << bytes.size();
    std::fclose(in);
  }
}

}  // namespace
