#!/usr/bin/env bash
# W8A8SC compression benchmark on the fixture models at 50 % sparsity (st-sparsify --method
# wanda): compressed bytes / raw int8 bytes of st-compress's codec beside `zstd -19` of the raw
# int8 weights and beside the empirical (order-0, per tensor) entropy bound; codec compression
# and decompression speed in GB/s of raw int8 (1 and all threads); end-to-end tool times.
#
#   scripts/bench-compress.sh [BUILD_DIR]      (default: build; builds it if needed)
#
# Needs zstd(1) and a C++ compiler (the codec timing loop is compiled against BUILD_DIR/libst_{w8a8sc,format,core}.a).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
[[ -x $BUILD/st-compress && -x $BUILD/st-sparsify ]] || cmake --build "$BUILD" -j2 >/dev/null
export ST_BIN=$BUILD ST_FIXTURES=$ROOT/tests/fixtures
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-compress.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
fail() { echo "bench-compress: $*" >&2; exit 1; }
# make_stats: st-calibrate when built, else synthetic statistics (the ratio then reflects
# pseudo-Wanda pruning; say which in the output).
source "$ROOT/tests/cli/lib.sh" >/dev/null 2>&1 || true
source "$ROOT/tests/cli/compress_helpers.bash"
command -v zstd >/dev/null || fail "zstd(1) is needed"

# The timing and entropy loop, against the library.
cat >"$WORK/bench.cpp" <<'EOF'
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#include <zstd.h>
#include "libst/format/safetensors.hpp"
#include "libst/w8a8sc/codec.hpp"
using clk = std::chrono::steady_clock;
int main(int argc, char** argv) {
  auto f = st::SafetensorsFile::open(argv[1]);
  if (!f) { std::fprintf(stderr, "%s\n", f.error().str().c_str()); return 2; }
  FILE* raw = std::fopen(argv[2], "wb");
  unsigned threads = static_cast<unsigned>(std::atoi(argv[3]));
  double raw_b = 0, comp_b = 0, ent_bits = 0, z19 = 0, tc = 0, td = 0;
  for (const auto& t : (*f)->header().tensors) {
    if (t.dtype != st::DType::I8 || t.shape.size() != 2) continue;
    const auto v = (*f)->data(t);
    const auto* w = reinterpret_cast<const int8_t*>(v.data);
    std::fwrite(w, 1, v.size, raw);
    double hist[256] = {0};
    for (size_t i = 0; i < v.size; ++i) hist[static_cast<uint8_t>(w[i])]++;
    for (double c : hist) if (c > 0) ent_bits -= c * std::log2(c / static_cast<double>(v.size));
    std::vector<char> zbuf(ZSTD_compressBound(v.size));
    z19 += static_cast<double>(ZSTD_compress(zbuf.data(), zbuf.size(), w, v.size, 19));
    st::w8a8sc::EncodeOptions o;
    o.threads = threads;
    const int reps = 5;
    st::w8a8sc::Compressed c;
    auto t0 = clk::now();
    for (int r = 0; r < reps; ++r) c = std::move(st::w8a8sc::compress(w, t.shape[0], t.shape[1], o).value());
    auto t1 = clk::now();
    std::vector<int8_t> back(v.size);
    for (int r = 0; r < reps; ++r)
      if (!st::w8a8sc::decompress(c.weight.data(), c.weight.size(), c.index.data(), c.index.size(), c.info.data(), 5,
                                  back.data(), threads)) return 2;
    auto t2 = clk::now();
    if (std::memcmp(back.data(), w, v.size) != 0) { std::fprintf(stderr, "round trip differs: %s\n", t.name.c_str()); return 2; }
    tc += std::chrono::duration<double>(t1 - t0).count() / reps;
    td += std::chrono::duration<double>(t2 - t1).count() / reps;
    raw_b += static_cast<double>(v.size);
    comp_b += static_cast<double>(c.weight.size() + c.index.size() + 40);
  }
  std::fclose(raw);
  // raw, codec, entropy bound, per-tensor zstd -19, compress GB/s, decompress GB/s
  std::printf("%.0f %.0f %.0f %.0f %.4f %.4f\n", raw_b, comp_b, ent_bits / 8, z19, raw_b / tc / 1e9, raw_b / td / 1e9);
}
EOF
c++ -O2 -std=c++17 -I"$ROOT" "$WORK/bench.cpp" "$BUILD/libst_w8a8sc.a" "$BUILD/libst_format.a" "$BUILD/libst_core.a" \
  $(pkg-config --libs libzstd libxxhash) -lpthread -o "$WORK/bench" || fail "cannot build the timing loop"

stats_kind=$([[ -x $BUILD/st-calibrate ]] && echo "st-calibrate (4 sequences)" || echo "synthetic (st-calibrate not built)")
cores=$(nproc)
printf '\nW8A8SC at 50%% sparsity (st-sparsify: Wanda, and N:M 2:4); statistics: %s; %s cores\n\n' "$stats_kind" "$cores"
printf '| model | int8 bytes | st-tile (ratio) | zstd -19 (ratio) | entropy bound | compress GB/s 1T / %sT | decompress GB/s 1T / %sT | st-compress s | -d s |\n' "$cores" "$cores"
printf '|---|---|---|---|---|---|---|---|---|\n'
for run in llama-4m-fp16:wanda deepseekv3-mla-6m-fp16:wanda llama-4m-fp16:2:4 deepseekv3-mla-6m-fp16:2:4; do
  model=${run%%:*}
  pattern=${run#*:}
  W=$WORK/$model-${pattern/:/-}
  mkdir -p "$W"
  [[ -f $WORK/$model.stats ]] || make_stats "$ST_FIXTURES/$model" "$WORK/$model.stats" 2>/dev/null
  if [[ $pattern == wanda ]]; then
    "$BUILD/st-sparsify" "$ST_FIXTURES/$model" --stats "$WORK/$model.stats" --method wanda -o "$W/s" -q 2>/dev/null
  else
    "$BUILD/st-sparsify" "$ST_FIXTURES/$model" --stats "$WORK/$model.stats" --method nm --nm "$pattern" -o "$W/s" -q 2>/dev/null
  fi
  read -r raw comp ent _z19t c1 d1 < <("$WORK/bench" "$W/s/quant_model_weight_w8a8s.safetensors" "$W/raw.bin" 1)
  read -r _ _ _ _ cn dn < <("$WORK/bench" "$W/s/quant_model_weight_w8a8s.safetensors" "$W/raw.bin" "$cores")
  zstd -19 -q -f "$W/raw.bin" -o "$W/raw.zst"
  z19=$(stat -c %s "$W/raw.zst")
  t0=$(date +%s.%N)
  "$BUILD/st-compress" "$W/s" -o "$W/sc" -q
  t1=$(date +%s.%N)
  "$BUILD/st-compress" -d "$W/sc" -o "$W/back" -q
  t2=$(date +%s.%N)
  cmp -s "$W/s/quant_model_weight_w8a8s.safetensors" "$W/back/quant_model_weight_w8a8s.safetensors" ||
    fail "$model: decompressed weights differ"
  python3 - "$model ($pattern)" "$raw" "$comp" "$z19" "$ent" "$c1" "$cn" "$d1" "$dn" "$t0" "$t1" "$t2" <<'EOF'
import sys
m, raw, comp, z19, ent = sys.argv[1], *map(float, sys.argv[2:6])
c1, cn, d1, dn, t0, t1, t2 = map(float, sys.argv[6:13])
print(f"| {m} | {raw:,.0f} | {comp:,.0f} ({comp / raw:.3f}) | {z19:,.0f} ({z19 / raw:.3f}) | {ent:,.0f} ({ent / raw:.3f}) "
      f"| {c1:.2f} / {cn:.2f} | {d1:.2f} / {dn:.2f} | {t1 - t0:.2f} | {t2 - t1:.2f} |")
EOF
done
printf '\nst-tile = weights + index + info; zstd -19 = zstd(1) on all int8 weights concatenated (no random\n'
printf 'access); entropy bound = sum over weights of n*k*H0 (order-0 entropy of the weight'"'"'s int8 histogram).\n'
printf 'GB/s are of raw int8 bytes through the codec alone, in memory; tool times include all I/O and fsync.\n'
