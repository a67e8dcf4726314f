// W8A8SC tile codec: compresses one rank's sparse int8 weight [n,k] into a byte stream, a
// per-tile index and an info vector, and back, bit for bit.
//
// Ascend's own W8A8SC bitstream is proprietary; this is st-tools' codec ("st-tile v1") on the
// tile grid the MindIE W8A8SC page prescribes. It is designed for ~50 %-sparse int8 weights:
// a nonzero bitmap plus the packed nonzero values, each section entropy-coded with zstd only
// where that makes it smaller. Every tile is decodable on its own.
//
// THE GRID
//   The weight W is int8 [n, k], row-major (n output rows, k input columns). It is padded with
//   zeros to n_pad = roundup(n, 16) rows and k_pad = roundup(k, 32) columns (MindIE: n1 = n/16,
//   k1 = k/32) and cut into tiles of TN = 128 rows by TK = 256 columns (tilingN = 8 units of 16,
//   tilingK = 8 units of 32). There are NT = ceil(n/128) tile rows and KT = ceil(k/256) tile
//   columns, T = NT * KT tiles, numbered t = tn * KT + tk (tile rows outer, k fastest).
//   Tile (tn, tk) covers rows r0 = 128 tn .. r0 + R - 1 and columns c0 = 256 tk .. c0 + C - 1,
//   R = min(128, n_pad - r0) (a multiple of 16), C = min(256, k_pad - c0) (a multiple of 32).
//   Elements of a tile are ordered row-major: element e = r * C + c (r < R, c < C).
//
// THE THREE TENSORS (all little-endian)
//   .info   I64 [5] = [tilingK = 8, tilingN = 8, k, n, 1]; k and n are the unpadded shape,
//           the last value (1) says "compressed with st-tile v1".
//   .index  I8 [T * 8]: 8 bytes per tile, in tile order t:
//             bytes 0..4  offset of the tile's record in .weight, unsigned 40-bit LE
//             bytes 5..7  length of the tile's record in bytes, unsigned 24-bit LE
//           Records are contiguous and in tile order: offset(0) = 0,
//           offset(t + 1) = offset(t) + length(t), offset(T-1) + length(T-1) = size of .weight.
//   .weight I8 [S]: the T tile records, concatenated.
//
// ONE TILE RECORD
//   byte 0      mode
//                 bits 0-1  layout: 0 = ZERO (every element is 0), 1 = DENSE, 2 = SPARSE; 3 invalid
//                 bit  2    SPARSE only: the bitmap section is a zstd frame
//                 bit  3    DENSE: the dense section is a zstd frame;
//                           SPARSE: the values section is a zstd frame
//                 bits 4-7  zero
//               (ZERO must have bits 2-3 clear; DENSE must have bit 2 clear.)
//   bytes 1..4  check: the low 32 bits of XXH3_64bits (xxHash, seed 0) over the decoded tile's
//               R * C bytes in element order, padding included, as uint32 LE.
//   payload     ZERO:   nothing (record length is exactly 5).
//               DENSE:  the R * C int8 values in element order; raw (exactly R * C bytes) or,
//                       with bit 3, one zstd frame (RFC 8878) decompressing to exactly R * C bytes.
//               SPARSE: the bitmap section then the values section.
//                       Bitmap: R * C bits, bit e set when element e is nonzero; element e is bit
//                       (e mod 8) (LSB first) of byte floor(e / 8); R * C / 8 bytes. Raw, or with
//                       bit 2: a uint16 LE length L, then one zstd frame of L bytes decompressing
//                       to exactly R * C / 8 bytes.
//                       Values: the nonzero elements' int8 values in element order, nnz bytes
//                       (nnz = popcount of the bitmap); raw, or with bit 3 one zstd frame
//                       decompressing to exactly nnz bytes. The values section runs to the end
//                       of the record. Every value must be nonzero.
//   Decoding a tile needs only its record, R, C and (to check padding) the unpadded n, k.
//   A decoder refuses: a bad info vector; an index of the wrong length, with records out of
//   order, overlapping, leaving gaps or running past the stream; an unknown mode; a section of
//   the wrong size; a zstd frame that fails or decodes to the wrong size; a zero in the values;
//   a nonzero element in the padding; a check mismatch.
//
// THE ENCODER (this implementation; any choice it makes decodes the same)
//   ZERO for an all-zero tile. Otherwise SPARSE with each section zstd-coded (level
//   EncodeOptions::zstd_level) only where the frame is smaller than the raw section; DENSE
//   (raw or zstd, the smaller) when that beats SPARSE.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "libst/core/error.hpp"

namespace st::w8a8sc {

constexpr int64_t kPadN = 16, kPadK = 32;       // pad n and k to these multiples
constexpr int64_t kTilingN = 8, kTilingK = 8;   // tile = 8 units of 16 rows, 8 units of 32 columns
constexpr int64_t kTileN = kPadN * kTilingN;    // 128 rows
constexpr int64_t kTileK = kPadK * kTilingK;    // 256 columns
constexpr size_t kIndexEntryBytes = 8;
constexpr size_t kRecordHeaderBytes = 5;        // mode + check
constexpr int64_t kInfoFlag = 1;
constexpr uint64_t kMaxOffset = (uint64_t{1} << 40) - 1;

enum TileLayout : uint8_t { kZero = 0, kDense = 1, kSparse = 2 };
enum ModeBits : uint8_t { kBitmapZstd = 1u << 2, kPayloadZstd = 1u << 3 };

// The tile grid of an [n, k] weight.
struct Grid {
  int64_t n = 0, k = 0;          // unpadded
  int64_t n_pad = 0, k_pad = 0;  // padded to 16 / 32
  int64_t tiles_n = 0, tiles_k = 0;
  static Grid of(int64_t n, int64_t k);
  int64_t tiles() const { return tiles_n * tiles_k; }
  size_t index_bytes() const { return static_cast<size_t>(tiles()) * kIndexEntryBytes; }
  std::array<int64_t, 5> info() const { return {kTilingK, kTilingN, k, n, kInfoFlag}; }
  // Tile t's position and size.
  void tile(int64_t t, int64_t& r0, int64_t& c0, int64_t& rows, int64_t& cols) const;
};

struct EncodeOptions {
  int zstd_level = 3;
};

// How the encoder coded the tiles (for reports and benchmarks).
struct EncodeStats {
  uint64_t tiles[3] = {0, 0, 0};  // by layout
  uint64_t bitmap_zstd = 0, payload_zstd = 0;
  uint64_t nonzeros = 0, elements = 0;  // of the unpadded weight
};

struct Compressed {
  std::vector<int8_t> weight;  // the tile records
  std::vector<int8_t> index;   // T * 8 bytes
  std::array<int64_t, 5> info{};
  EncodeStats stats;
};

// Compresses w (int8 [n, k], row-major), tiles in parallel (st::threads()). Errors: negative
// shapes, a stream past 2^40 bytes.
Result<Compressed> compress(const int8_t* w, int64_t n, int64_t k, const EncodeOptions& options = {});

// Checks an info vector and returns its grid.
Result<Grid> grid_from_info(const int64_t* info, size_t count);

// Decompresses into out (n * k bytes, row-major) after checking every rule above. Errors are
// Errc::format with a message naming the tile.
Status decompress(const int8_t* weight, size_t weight_bytes, const int8_t* index, size_t index_bytes,
                  const int64_t* info, size_t info_count, int8_t* out);

// Decodes one tile record (bytes, len) of grid g into out: the tile's R x C elements in
// element order (padding included). Needs nothing but the record.
Status decode_tile(const Grid& g, int64_t t, const uint8_t* record, size_t len, int8_t* out);

}  // namespace st::w8a8sc
