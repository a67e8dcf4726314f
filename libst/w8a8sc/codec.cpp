// W8A8SC tile codec ("st-tile v1"): encoder and validating decoder; the format is in codec.hpp.
#include "libst/w8a8sc/codec.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "libst/core/parallel.hpp"

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zstd.h>

namespace st::w8a8sc {
namespace {

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// fn(t) for every tile t in [0, count), in parallel, at least 8 tiles per thread so that small
// weights do not pay for starting threads (a tile takes tens of microseconds). Each tile has its
// own output: the result does not depend on the thread count.
void for_each_tile(int64_t count, const std::function<void(int64_t)>& fn) {
  parallel_for(
      count,
      [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) fn(t);
      },
      8);
}

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
};
ZSTD_CCtx* thread_cctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxFree> c(ZSTD_createCCtx());
  return c.get();
}
ZSTD_DCtx* thread_dctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxFree> c(ZSTD_createDCtx());
  return c.get();
}

uint32_t tile_check(const int8_t* tile, size_t bytes) {
  return static_cast<uint32_t>(XXH3_64bits(tile, bytes));
}

void put_le(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// zstd-compresses src into dst (resized); returns false when zstd fails.
bool zstd_into(const void* src, size_t n, int level, std::vector<uint8_t>& dst) {
  dst.resize(ZSTD_compressBound(n));
  const size_t z = ZSTD_compressCCtx(thread_cctx(), dst.data(), dst.size(), src, n, level);
  if (ZSTD_isError(z)) return false;
  dst.resize(z);
  return true;
}

// Encodes one tile (R x C elements in element order) into record.
struct TileEncoder {
  int level;
  std::vector<uint8_t> bitmap, values, zbitmap, zvalues, zdense;

  void encode(const int8_t* tile, int64_t rows, int64_t cols, std::vector<uint8_t>& record, EncodeStats& st) {
    const size_t rc = static_cast<size_t>(rows * cols);
    const uint32_t check = tile_check(tile, rc);
    bitmap.resize(rc / 8);
    values.resize(rc);
    size_t nnz = 0;
    for (size_t i = 0; i < rc / 8; ++i) {  // branchless: write every value, advance on nonzero
      const int8_t* x = tile + i * 8;
      unsigned b = 0;
      for (int j = 0; j < 8; ++j) {
        const unsigned nz = x[j] != 0;
        b |= nz << j;
        values[nnz] = static_cast<uint8_t>(x[j]);
        nnz += nz;
      }
      bitmap[i] = static_cast<uint8_t>(b);
    }
    values.resize(nnz);
    record.clear();
    uint8_t head[kRecordHeaderBytes];
    put_le(head + 1, check, 4);
    if (nnz == 0) {
      head[0] = kZero;
      record.assign(head, head + kRecordHeaderBytes);
      st.tiles[kZero]++;
      return;
    }
    const bool bz = zstd_into(bitmap.data(), bitmap.size(), level, zbitmap) && zbitmap.size() + 2 < bitmap.size();
    const bool vz = zstd_into(values.data(), nnz, level, zvalues) && zvalues.size() < nnz;
    const size_t sparse = (bz ? 2 + zbitmap.size() : bitmap.size()) + (vz ? zvalues.size() : nnz);
    size_t dense = rc;
    bool dz = false;
    if (nnz * 4 > rc * 3 && zstd_into(tile, rc, level, zdense) && zdense.size() < rc) {
      dense = zdense.size();
      dz = true;
    }
    if (dense < sparse) {
      head[0] = static_cast<uint8_t>(kDense | (dz ? kPayloadZstd : 0));
      record.assign(head, head + kRecordHeaderBytes);
      if (dz) record.insert(record.end(), zdense.begin(), zdense.end());
      else record.insert(record.end(), reinterpret_cast<const uint8_t*>(tile), reinterpret_cast<const uint8_t*>(tile) + rc);
      st.tiles[kDense]++;
      st.payload_zstd += dz;
      return;
    }
    head[0] = static_cast<uint8_t>(kSparse | (bz ? kBitmapZstd : 0) | (vz ? kPayloadZstd : 0));
    record.assign(head, head + kRecordHeaderBytes);
    if (bz) {
      uint8_t len[2];
      put_le(len, zbitmap.size(), 2);
      record.insert(record.end(), len, len + 2);
      record.insert(record.end(), zbitmap.begin(), zbitmap.end());
    } else {
      record.insert(record.end(), bitmap.begin(), bitmap.end());
    }
    if (vz) record.insert(record.end(), zvalues.begin(), zvalues.end());
    else record.insert(record.end(), values.begin(), values.end());
    st.tiles[kSparse]++;
    st.bitmap_zstd += bz;
    st.payload_zstd += vz;
  }
};

// Bits set in each byte value.
constexpr auto kPopcount = [] {
  std::array<uint8_t, 256> t{};
  for (int i = 0; i < 256; ++i) t[i] = static_cast<uint8_t>((i & 1) + ((i >> 1) & 1) + ((i >> 2) & 1) + ((i >> 3) & 1) +
                                                             ((i >> 4) & 1) + ((i >> 5) & 1) + ((i >> 6) & 1) + ((i >> 7) & 1));
  return t;
}();

Error tile_error(int64_t t, const std::string& what) {
  return make_error(Errc::format, "w8a8sc tile " + std::to_string(t) + ": " + what);
}

// Decompresses exactly `want` bytes from a zstd frame.
Status unzstd(int64_t t, const char* section, const uint8_t* src, size_t n, void* dst, size_t want) {
  const size_t got = ZSTD_decompressDCtx(thread_dctx(), dst, want, src, n);
  if (ZSTD_isError(got))
    return tile_error(t, std::string(section) + " section: zstd: " + ZSTD_getErrorName(got));
  if (got != want)
    return tile_error(t, std::string(section) + " section decodes to " + std::to_string(got) + " bytes, expected " +
                             std::to_string(want));
  return Status{};
}

}  // namespace

Grid Grid::of(int64_t n, int64_t k) {
  Grid g;
  g.n = n;
  g.k = k;
  g.n_pad = round_up(n, kPadN);
  g.k_pad = round_up(k, kPadK);
  g.tiles_n = (n + kTileN - 1) / kTileN;
  g.tiles_k = (k + kTileK - 1) / kTileK;
  return g;
}

void Grid::tile(int64_t t, int64_t& r0, int64_t& c0, int64_t& rows, int64_t& cols) const {
  const int64_t tn = t / tiles_k, tk = t % tiles_k;
  r0 = tn * kTileN;
  c0 = tk * kTileK;
  rows = std::min(kTileN, n_pad - r0);
  cols = std::min(kTileK, k_pad - c0);
}

Result<Compressed> compress(const int8_t* w, int64_t n, int64_t k, const EncodeOptions& options) {
  if (n < 0 || k < 0) return make_error(Errc::usage, "w8a8sc: negative weight shape");
  const Grid g = Grid::of(n, k);
  const int64_t T = g.tiles();
  std::vector<std::vector<uint8_t>> records(static_cast<size_t>(T));
  std::vector<EncodeStats> stats(static_cast<size_t>(T));
  for_each_tile(T, [&](int64_t t) {
    thread_local TileEncoder enc{0, {}, {}, {}, {}, {}};
    thread_local std::vector<int8_t> tile;
    enc.level = options.zstd_level;
    int64_t r0, c0, rows, cols;
    g.tile(t, r0, c0, rows, cols);
    tile.assign(static_cast<size_t>(rows * cols), 0);
    const int64_t rr = std::min(rows, n - r0), cc = std::min(cols, k - c0);
    for (int64_t r = 0; r < rr; ++r) std::memcpy(&tile[r * cols], w + (r0 + r) * k + c0, static_cast<size_t>(cc));
    enc.encode(tile.data(), rows, cols, records[t], stats[t]);
  });
  Compressed out;
  out.info = g.info();
  out.index.resize(g.index_bytes());
  uint64_t total = 0;
  for (const auto& r : records) total += r.size();
  if (total > kMaxOffset) return make_error(Errc::unsupported, "w8a8sc: compressed stream exceeds 2^40 bytes");
  out.weight.resize(total);
  uint64_t off = 0;
  for (int64_t t = 0; t < T; ++t) {
    const auto& r = records[t];
    auto* e = reinterpret_cast<uint8_t*>(out.index.data()) + t * kIndexEntryBytes;
    put_le(e, off, 5);
    put_le(e + 5, r.size(), 3);
    if (!r.empty()) std::memcpy(out.weight.data() + off, r.data(), r.size());
    off += r.size();
    const EncodeStats& s = stats[t];
    for (int l = 0; l < 3; ++l) out.stats.tiles[l] += s.tiles[l];
    out.stats.bitmap_zstd += s.bitmap_zstd;
    out.stats.payload_zstd += s.payload_zstd;
  }
  out.stats.elements = static_cast<uint64_t>(n) * static_cast<uint64_t>(k);
  for (uint64_t i = 0; i < out.stats.elements; ++i) out.stats.nonzeros += w[i] != 0;
  return out;
}

Result<Grid> grid_from_info(const int64_t* info, size_t count) {
  if (count != 5) return make_error(Errc::format, "w8a8sc info has " + std::to_string(count) + " values, expected 5");
  if (info[0] != kTilingK || info[1] != kTilingN)
    return make_error(Errc::format, "w8a8sc info tiling [" + std::to_string(info[0]) + ", " + std::to_string(info[1]) +
                                        "] is not [8, 8]");
  if (info[4] != kInfoFlag)
    return make_error(Errc::format, "w8a8sc info flag " + std::to_string(info[4]) + " is not 1 (st-tile v1)");
  if (info[2] < 0 || info[3] < 0 || info[2] > (int64_t{1} << 31) || info[3] > (int64_t{1} << 31))
    return make_error(Errc::format, "w8a8sc info shape [k=" + std::to_string(info[2]) + ", n=" +
                                        std::to_string(info[3]) + "] is out of range");
  return Grid::of(info[3], info[2]);
}

Status decode_tile(const Grid& g, int64_t t, const uint8_t* rec, size_t len, int8_t* out) {
  int64_t r0, c0, rows, cols;
  g.tile(t, r0, c0, rows, cols);
  const size_t rc = static_cast<size_t>(rows * cols), bm_bytes = rc / 8;
  if (len < kRecordHeaderBytes) return tile_error(t, "record of " + std::to_string(len) + " bytes is too short");
  const uint8_t mode = rec[0];
  const uint8_t layout = mode & 3;
  const uint32_t check = static_cast<uint32_t>(get_le(rec + 1, 4));
  if ((mode & 0xF0) || layout == 3 || (layout == kZero && (mode & 0x0C)) || (layout == kDense && (mode & kBitmapZstd)))
    return tile_error(t, "invalid mode byte " + std::to_string(mode));
  const uint8_t* p = rec + kRecordHeaderBytes;
  size_t left = len - kRecordHeaderBytes;
  if (layout == kZero) {
    if (left != 0) return tile_error(t, "zero tile record has " + std::to_string(left) + " payload bytes");
    std::memset(out, 0, rc);
  } else if (layout == kDense) {
    if (mode & kPayloadZstd) {
      ST_CHECK(unzstd(t, "dense", p, left, out, rc));
    } else {
      if (left != rc) return tile_error(t, "dense section has " + std::to_string(left) + " bytes, expected " + std::to_string(rc));
      std::memcpy(out, p, rc);
    }
  } else {
    thread_local std::vector<uint8_t> bitmap, values;
    bitmap.resize(bm_bytes);
    if (mode & kBitmapZstd) {
      if (left < 2) return tile_error(t, "bitmap length field is missing");
      const size_t l = get_le(p, 2);
      if (l > left - 2) return tile_error(t, "bitmap frame of " + std::to_string(l) + " bytes runs past the record");
      ST_CHECK(unzstd(t, "bitmap", p + 2, l, bitmap.data(), bm_bytes));
      p += 2 + l;
      left -= 2 + l;
    } else {
      if (left < bm_bytes) return tile_error(t, "bitmap section runs past the record");
      std::memcpy(bitmap.data(), p, bm_bytes);
      p += bm_bytes;
      left -= bm_bytes;
    }
    size_t nnz = 0;
    for (size_t i = 0; i < bm_bytes; ++i) nnz += kPopcount[bitmap[i]];
    values.resize(nnz + 8);  // the expansion below may read up to 8 bytes past the last value
    if (mode & kPayloadZstd) {
      ST_CHECK(unzstd(t, "values", p, left, values.data(), nnz));
    } else {
      if (left != nnz)
        return tile_error(t, "values section has " + std::to_string(left) + " bytes, bitmap says " + std::to_string(nnz));
      std::memcpy(values.data(), p, nnz);
    }
    size_t v = 0;
    for (size_t i = 0; i < bm_bytes; ++i) {  // branchless: mask the next value by the bit
      const unsigned b = bitmap[i];
      int8_t* o = out + i * 8;
      for (int j = 0; j < 8; ++j) {
        const unsigned bit = (b >> j) & 1u;
        o[j] = static_cast<int8_t>(values[v] & static_cast<uint8_t>(0u - bit));
        v += bit;
      }
    }
    if (std::memchr(values.data(), 0, nnz)) return tile_error(t, "values section holds a zero");
  }
  if (tile_check(out, rc) != check) return tile_error(t, "check mismatch (corrupt data)");
  // Padding rows and columns must be zero.
  const int64_t rr = std::min(rows, g.n - r0), cc = std::min(cols, g.k - c0);
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* row = out + r * cols;
    const int64_t from = r < rr ? cc : 0;
    for (int64_t c = from; c < cols; ++c)
      if (row[c] != 0) return tile_error(t, "nonzero value in the padding");
  }
  return Status{};
}

Status decompress(const int8_t* weight, size_t weight_bytes, const int8_t* index, size_t index_bytes,
                  const int64_t* info, size_t info_count, int8_t* out) {
  ST_ASSIGN(const Grid g, grid_from_info(info, info_count));
  if (index_bytes != g.index_bytes())
    return make_error(Errc::format, "w8a8sc index has " + std::to_string(index_bytes) + " bytes, expected " +
                                        std::to_string(g.index_bytes()) + " (ceil(k/256) * ceil(n/128) * 8)");
  const int64_t T = g.tiles();
  const auto* idx = reinterpret_cast<const uint8_t*>(index);
  std::vector<uint64_t> off(static_cast<size_t>(T)), len(static_cast<size_t>(T));
  uint64_t expect = 0;
  for (int64_t t = 0; t < T; ++t) {
    off[t] = get_le(idx + t * kIndexEntryBytes, 5);
    len[t] = get_le(idx + t * kIndexEntryBytes + 5, 3);
    if (off[t] != expect)
      return tile_error(t, "index offset " + std::to_string(off[t]) + " is not where the previous record ends (" +
                               std::to_string(expect) + ")");
    expect += len[t];
    if (expect > weight_bytes)
      return tile_error(t, "record runs past the end of the stream (" + std::to_string(weight_bytes) + " bytes)");
  }
  if (expect != weight_bytes)
    return make_error(Errc::format, "w8a8sc stream has " + std::to_string(weight_bytes - expect) +
                                        " bytes after the last tile record");
  std::vector<Status> results(static_cast<size_t>(T));
  const auto* stream = reinterpret_cast<const uint8_t*>(weight);
  for_each_tile(T, [&](int64_t t) {
    thread_local std::vector<int8_t> tile;
    int64_t r0, c0, rows, cols;
    g.tile(t, r0, c0, rows, cols);
    tile.resize(static_cast<size_t>(rows * cols));
    results[t] = decode_tile(g, t, stream + off[t], len[t], tile.data());
    if (!results[t]) return;
    const int64_t rr = std::min(rows, g.n - r0), cc = std::min(cols, g.k - c0);
    for (int64_t r = 0; r < rr; ++r)
      std::memcpy(out + (r0 + r) * g.k + c0, &tile[r * cols], static_cast<size_t>(cc));
  });
  for (auto& r : results)
    if (!r) return std::move(r).error();
  return Status{};
}

}  // namespace st::w8a8sc
