#!/usr/bin/env bash
# Forward-pass throughput on llama-4m against this machine's single-precision GEMM peak,
# measured in the same run: st-eval's achieved GFLOP/s (its own FLOP count: every linear and
# the causal attention products, 2 per multiply-add) beside OpenBLAS sgemm on 1024^3 with the
# same threads and the same OpenBLAS core.
#
#   scripts/bench-forward.sh [SAMPLES]        (default 32 sequences of 512 tokens)
#   ST_BIN=build scripts/bench-forward.sh      (directory holding st-eval; default: build/, built if missing)
# Needs a C++ compiler and OpenBLAS headers (the build's own dependencies) for the sgemm probe.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SAMPLES=${1:-32}
ST_BIN=${ST_BIN:-$ROOT/build}
if [[ ! -x $ST_BIN/st-eval ]]; then
  cmake -S "$ROOT" -B "$ST_BIN" -G Ninja >/dev/null && cmake --build "$ST_BIN" --target st-eval >/dev/null
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cat >"$TMP/peak.cpp" <<'CPP'
// sgemm peak: C = A * B^T, n^3, repeated for about a second; prints GFLOP/s (wall clock).
#include <cblas.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1024;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  auto run = [&] { cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1, a.data(), n, b.data(), n, 0, c.data(), n); };
  run();
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    int it = 0;
    double s = 0;
    do { run(); ++it; s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); } while (s < 0.2);
    best = std::max(best, 2.0 * n * n * double(n) * it / s / 1e9);
  }
  std::printf("%.1f\n", best);
}
CPP
c++ -O2 -o "$TMP/peak" "$TMP/peak.cpp" $(pkg-config --cflags --libs openblas 2>/dev/null || echo -lopenblas)

DATA=$ROOT/tests/fixtures/data/eval_512x128.u32
"$ST_BIN/st-eval" "$ROOT/tests/fixtures/llama-4m-fp16" --data "$DATA" --samples "$SAMPLES" --json -q >"$TMP/eval.json"
read -r threads core gflops secs fwd_rate tps < <(python3 -c '
import json,sys; d=json.load(open(sys.argv[1]))
print(d["threads"], d["blas_core"], d["forward_gflops"], d["forward_seconds"], d["forward_gflop_per_second"], d["tokens_per_second"])' "$TMP/eval.json")
peak=$(OPENBLAS_CORETYPE=$core OPENBLAS_NUM_THREADS=$threads "$TMP/peak" 1024)
peak1=$(OPENBLAS_CORETYPE=$core OPENBLAS_NUM_THREADS=1 "$TMP/peak" 1024)

printf 'forward pass, llama-4m-fp16, %s x 512 tokens, %s threads, OpenBLAS core %s, load average %s\n' \
  "$SAMPLES" "$threads" "$core" "$(cut -d' ' -f1 /proc/loadavg)"
printf '%-34s %12s\n' "measure" "GFLOP/s"
printf '%-34s %12.1f\n' "sgemm peak, 1024^3, $threads threads" "$peak"
printf '%-34s %12.1f\n' "sgemm peak, 1024^3, 1 thread" "$peak1"
printf '%-34s %12.1f\n' "  x $threads threads" "$(python3 -c "print($peak1*$threads)")"
printf '%-34s %12.1f\n' "st-eval forward ($threads threads)" "$fwd_rate"
# st-eval runs one sequence per core with single-threaded BLAS inside, so the machine's peak is the
# better of the threaded sgemm and threads x the single-thread sgemm (OpenBLAS rarely scales 1024^3
# perfectly, and a loaded core drags the threaded figure down).
python3 -c 'import sys; f,p,q,t=map(float,sys.argv[1:]); best=max(p,t*q)
print("%-34s %12.1f" % ("machine peak (best of the two)", best)); print("%-34s %11.0f%%" % ("forward / machine peak", 100*f/best))' "$fwd_rate" "$peak" "$peak1" "$threads"
printf '(%.1f GFLOP in %.2f s of forward passes; %.0f tokens/s end to end incl. scoring)\n' "$gflops" "$secs" "$tps"
