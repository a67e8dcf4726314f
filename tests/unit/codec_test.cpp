// W8A8SC tile codec: grid formulas, round trips on synthetic tensors, one-tile decoding, and
// refusal of corrupt streams.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "libst/w8a8sc/codec.hpp"
#include "st_test_util.hpp"

namespace sc = st::w8a8sc;

namespace {

constexpr uint32_t kSeed = 20261123;

// Gaussian weights quantized per row to int8 (max |q| = 127), then the given fraction of each
// row's smallest |W| zeroed: what W8A8S weights look like.
std::vector<int8_t> sparse_weights(int64_t n, int64_t k, double sparsity, uint32_t seed = kSeed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<int8_t> q(static_cast<size_t>(n * k));
  std::vector<float> row(static_cast<size_t>(k)), mag(static_cast<size_t>(k));
  for (int64_t r = 0; r < n; ++r) {
    float mx = 1e-9f;
    for (int64_t c = 0; c < k; ++c) {
      row[c] = normal(rng);
      mx = std::max(mx, std::fabs(row[c]));
      mag[c] = std::fabs(row[c]);
    }
    const int64_t drop = static_cast<int64_t>(sparsity * static_cast<double>(k));
    float thr = -1;
    if (drop > 0) {
      std::nth_element(mag.begin(), mag.begin() + (drop - 1), mag.end());
      thr = mag[drop - 1];
    }
    for (int64_t c = 0; c < k; ++c)
      q[r * k + c] = std::fabs(row[c]) <= thr ? 0 : static_cast<int8_t>(std::nearbyint(row[c] / mx * 127.f));
  }
  return q;
}

void round_trip(const std::vector<int8_t>& w, int64_t n, int64_t k, sc::EncodeOptions opt = {}) {
  auto c = sc::compress(w.data(), n, k, opt);
  ASSERT_TRUE(c.ok()) << c.error().str();
  const sc::Grid g = sc::Grid::of(n, k);
  EXPECT_EQ(c->index.size(), static_cast<size_t>((k + 255) / 256 * ((n + 127) / 128) * 8));
  EXPECT_EQ(c->info, (std::array<int64_t, 5>{8, 8, k, n, 1}));
  EXPECT_EQ(c->stats.tiles[0] + c->stats.tiles[1] + c->stats.tiles[2], static_cast<uint64_t>(g.tiles()));
  std::vector<int8_t> back(w.size(), 0x55);
  auto s = sc::decompress(c->weight.data(), c->weight.size(), c->index.data(), c->index.size(), c->info.data(), 5,
                          back.data());
  ASSERT_TRUE(s.ok()) << s.error().str();
  EXPECT_TRUE(back == w) << "round trip differs for [" << n << ", " << k << "]";
}

TEST(W8A8SCCodec, GridFollowsTheFormula) {
  // y = ceil(ceil(k/32)/8) * ceil(ceil(n/16)/8) * 8
  for (int64_t n : {1, 15, 16, 17, 128, 129, 1000})
    for (int64_t k : {1, 31, 32, 33, 256, 257, 4000}) {
      const sc::Grid g = sc::Grid::of(n, k);
      const int64_t k1 = (k + 31) / 32, n1 = (n + 15) / 16;
      EXPECT_EQ(g.index_bytes(), static_cast<size_t>((k1 + 7) / 8 * ((n1 + 7) / 8) * 8));
      EXPECT_EQ(g.n_pad % 16, 0);
      EXPECT_EQ(g.k_pad % 32, 0);
      int64_t covered = 0;
      for (int64_t t = 0; t < g.tiles(); ++t) {
        int64_t r0, c0, rows, cols;
        g.tile(t, r0, c0, rows, cols);
        EXPECT_GT(rows, 0);
        EXPECT_LE(rows, 128);
        EXPECT_LE(cols, 256);
        EXPECT_EQ(rows % 16, 0);
        EXPECT_EQ(cols % 32, 0);
        covered += rows * cols;
      }
      EXPECT_EQ(covered, g.n_pad * g.k_pad);
    }
}

TEST(W8A8SCCodec, RoundTripsOddShapes) {
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {1, 300}, {300, 1}, {17, 33}, {16, 32}, {128, 256}, {129, 257}, {255, 511}, {384, 768}, {1000, 77}})
    round_trip(sparse_weights(n, k, 0.5), n, k);
}

TEST(W8A8SCCodec, RoundTripsEmptyAllZeroAndDense) {
  round_trip({}, 0, 0);
  round_trip({}, 0, 100);
  round_trip({}, 100, 0);
  std::vector<int8_t> zero(200 * 300, 0);
  round_trip(zero, 200, 300);
  auto c = sc::compress(zero.data(), 200, 300);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->stats.tiles[sc::kZero], 4u);
  EXPECT_EQ(c->weight.size(), 4 * sc::kRecordHeaderBytes);
  // Dense: no zeros at all, and the extremes -128 / 127.
  auto dense = sparse_weights(256, 512, 0.0);
  for (auto& v : dense) if (v == 0) v = 1;
  dense[0] = -128;
  dense[1] = 127;
  round_trip(dense, 256, 512);
  auto cd = sc::compress(dense.data(), 256, 512);
  ASSERT_TRUE(cd.ok());
  EXPECT_EQ(cd->stats.tiles[sc::kDense], 4u);
  EXPECT_LT(cd->weight.size(), dense.size());  // zstd still finds the Gaussian's entropy
}

TEST(W8A8SCCodec, RoundTripsStructured24AndCompressesIt) {
  const int64_t n = 256, k = 512;
  auto w = sparse_weights(n, k, 0.0);
  std::mt19937 rng(kSeed + 1);
  for (int64_t i = 0; i < n * k; i += 4) {  // keep 2 of every 4, at random positions
    int a = static_cast<int>(rng() % 4), b = static_cast<int>(rng() % 3);
    if (b >= a) ++b;
    for (int j = 0; j < 4; ++j)
      if (j != a && j != b) w[i + j] = 0;
      else if (w[i + j] == 0) w[i + j] = 3;
  }
  round_trip(w, n, k);
  auto c = sc::compress(w.data(), n, k);
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->stats.bitmap_zstd, 0u) << "a 2:4 bitmap has 2.6 bits of entropy per 4: zstd should pay";
  EXPECT_LE(static_cast<double>(c->weight.size() + c->index.size()), 0.65 * static_cast<double>(n * k));
}

TEST(W8A8SCCodec, HalfSparseTakesAtMost70Percent) {
  const int64_t n = 512, k = 1024;
  auto w = sparse_weights(n, k, 0.5);
  auto c = sc::compress(w.data(), n, k);
  ASSERT_TRUE(c.ok());
  const double ratio = static_cast<double>(c->weight.size() + c->index.size()) / static_cast<double>(n * k);
  EXPECT_LE(ratio, 0.70);
  EXPECT_GT(ratio, 0.30);  // cannot beat the entropy of a random half-density bitmap by much
  EXPECT_EQ(c->stats.tiles[sc::kSparse], 16u);
  round_trip(w, n, k);
}

TEST(W8A8SCCodec, ThreadCountAndLevelDoNotChangeDecoding) {
  auto w = sparse_weights(300, 600, 0.5);
  for (int threads : {1, 2, 7}) {
    st_test::ThreadCount t(threads);
    for (int level : {1, 3, 19}) round_trip(w, 300, 600, sc::EncodeOptions{level});
  }
  auto with = [&](int threads) {
    st_test::ThreadCount t(threads);
    return sc::compress(w.data(), 300, 600, {3});
  };
  auto a = with(1);
  auto b = with(4);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->weight, b->weight) << "output must not depend on the thread count";
  EXPECT_EQ(a->index, b->index);
}

TEST(W8A8SCCodec, DecodesOneTileAlone) {
  const int64_t n = 300, k = 700;
  auto w = sparse_weights(n, k, 0.5);
  auto c = sc::compress(w.data(), n, k);
  ASSERT_TRUE(c.ok());
  const sc::Grid g = sc::Grid::of(n, k);
  const int64_t t = g.tiles() - 1;  // the ragged corner tile
  const auto* e = reinterpret_cast<const uint8_t*>(c->index.data()) + t * 8;
  uint64_t off = 0, len = 0;
  for (int i = 4; i >= 0; --i) off = off << 8 | e[i];
  for (int i = 7; i >= 5; --i) len = len << 8 | e[i];
  // Copy the record out so nothing else of the stream is reachable.
  std::vector<uint8_t> rec(reinterpret_cast<const uint8_t*>(c->weight.data()) + off,
                           reinterpret_cast<const uint8_t*>(c->weight.data()) + off + len);
  int64_t r0, c0, rows, cols;
  g.tile(t, r0, c0, rows, cols);
  std::vector<int8_t> tile(static_cast<size_t>(rows * cols));
  auto s = sc::decode_tile(g, t, rec.data(), rec.size(), tile.data());
  ASSERT_TRUE(s.ok()) << s.error().str();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t col = 0; col < cols; ++col) {
      const int8_t want = (r0 + r < n && c0 + col < k) ? w[(r0 + r) * k + c0 + col] : 0;
      ASSERT_EQ(tile[r * cols + col], want) << "tile element " << r << "," << col;
    }
}

class W8A8SCCorrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    w_ = sparse_weights(n_, k_, 0.5);
    auto c = sc::compress(w_.data(), n_, k_);
    ASSERT_TRUE(c.ok());
    c_ = std::move(c.value());
  }
  // Decodes c_ and expects a format error whose message contains `what`.
  void expect_refused(const std::string& what) {
    std::vector<int8_t> out(w_.size());
    auto s = sc::decompress(c_.weight.data(), c_.weight.size(), c_.index.data(), c_.index.size(), c_.info.data(),
                            c_.info.size(), out.data());
    ASSERT_FALSE(s.ok()) << "corrupt stream accepted (" << what << ")";
    EXPECT_EQ(s.error().code, st::Errc::format);
    EXPECT_NE(s.error().message.find(what), std::string::npos) << s.error().message;
  }
  uint8_t* index_entry(int64_t t) { return reinterpret_cast<uint8_t*>(c_.index.data()) + t * 8; }
  uint64_t offset(int64_t t) {
    uint64_t v = 0;
    for (int i = 4; i >= 0; --i) v = v << 8 | index_entry(t)[i];
    return v;
  }
  const int64_t n_ = 200, k_ = 600;
  std::vector<int8_t> w_;
  sc::Compressed c_;
};

TEST_F(W8A8SCCorrupt, FlippedValueByteFailsTheCheck) {
  c_.weight[offset(1) + 200] ^= 0x10;
  expect_refused("tile");
}
TEST_F(W8A8SCCorrupt, TruncatedStream) {
  c_.weight.resize(c_.weight.size() - 3);
  expect_refused("past the end");
}
TEST_F(W8A8SCCorrupt, TrailingBytes) {
  c_.weight.push_back(0);
  expect_refused("after the last tile");
}
TEST_F(W8A8SCCorrupt, BadModeByte) {
  c_.weight[offset(2)] = static_cast<int8_t>(0x13);
  expect_refused("invalid mode");
}
TEST_F(W8A8SCCorrupt, IndexOutOfOrder) {
  index_entry(1)[0] ^= 1;
  expect_refused("index offset");
}
TEST_F(W8A8SCCorrupt, IndexWrongLength) {
  c_.index.resize(c_.index.size() - 8);
  expect_refused("expected");
}
TEST_F(W8A8SCCorrupt, InfoWrongTilingOrFlag) {
  c_.info[0] = 4;
  expect_refused("tiling");
  c_.info[0] = 8;
  c_.info[4] = 2;
  expect_refused("flag");
  c_.info[4] = 1;
  c_.info[2] = -5;
  expect_refused("out of range");
}
TEST_F(W8A8SCCorrupt, InfoWrongShapeMismatchesIndex) {
  c_.info[2] = 2000;  // k: 8 tile columns instead of 3
  expect_refused("index has");
}
TEST_F(W8A8SCCorrupt, GarbageZstdFrame) {
  // Tile 0 of a half-sparse Gaussian codes its values with zstd; break the frame's magic.
  const uint8_t mode = static_cast<uint8_t>(c_.weight[offset(0)]);
  ASSERT_EQ(mode & 3, sc::kSparse);
  ASSERT_TRUE(mode & sc::kPayloadZstd);
  const size_t values_at = offset(0) + sc::kRecordHeaderBytes + 128 * 256 / 8;
  c_.weight[values_at] ^= 0x7f;
  expect_refused("values section");
}
TEST_F(W8A8SCCorrupt, NonzeroPaddingRefused) {
  // Hand-build a stream for a 1x1 weight whose only tile (16x32) is DENSE raw with a nonzero
  // in the padding and a correct check: decoding must still refuse it.
  std::vector<int8_t> tile(16 * 32, 0);
  tile[0] = 5;
  tile[40] = 7;  // row 1: padding
  std::vector<int8_t> rec(sc::kRecordHeaderBytes);
  rec[0] = sc::kDense;
  const uint32_t check = static_cast<uint32_t>(XXH3_64bits(tile.data(), tile.size()));
  for (int i = 0; i < 4; ++i) rec[1 + i] = static_cast<int8_t>(check >> (8 * i));
  rec.insert(rec.end(), tile.begin(), tile.end());
  std::vector<int8_t> index(8, 0);
  index[5] = static_cast<int8_t>(rec.size() & 0xff);
  index[6] = static_cast<int8_t>(rec.size() >> 8);
  const int64_t info[5] = {8, 8, 1, 1, 1};
  int8_t out = 0;
  auto s = sc::decompress(rec.data(), rec.size(), index.data(), index.size(), info, 5, &out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("padding"), std::string::npos) << s.error().message;
  tile[40] = 0;  // the same stream without the padding value decodes
  const uint32_t ok_check = static_cast<uint32_t>(XXH3_64bits(tile.data(), tile.size()));
  for (int i = 0; i < 4; ++i) rec[1 + i] = static_cast<int8_t>(ok_check >> (8 * i));
  rec[sc::kRecordHeaderBytes + 40] = 0;
  ASSERT_TRUE(sc::decompress(rec.data(), rec.size(), index.data(), index.size(), info, 5, &out).ok());
  EXPECT_EQ(out, 5);
}

}  // namespace
