#!/usr/bin/env bash
# Benchmark the layer-streamed model runs (issue 16) on a TinyLlama-1.1B-shaped fp16 checkpoint
# (2.2 GB) generated in the run and deleted at its end: st-calibrate's and st-eval's peak RSS and
# the bytes they read from the checkpoint, over the weight bytes; SparseGPT's peak RSS; default
# static quantization's time over textbook static's.
#
#   scripts/bench-stream.sh [WORKDIR] [BUILD_DIR]        (defaults: /tmp/st-bench-stream, build)
#   BASELINE=DIR scripts/bench-stream.sh                 the same rows for DIR's tools (a build of
#                                                        another commit), with new / baseline ratios
#   SPARSEGPT=0 scripts/bench-stream.sh                  skip the SparseGPT row (minutes on 2 cores)
#   SAMPLES=8 SEQ_LEN=128                                calibration / evaluation data (the defaults)
#
# Peak RSS: the child's maximum resident set (getrusage, as /usr/bin/time -v reports it). Bytes
# read: read_bytes of /proc/self/io around the child (a reaped child's I/O is added to its
# parent's), with the checkpoint dropped from the page cache first (fsync + POSIX_FADV_DONTNEED),
# so every byte the tool touches comes from the disk once. The SparseGPT row runs BUILD only (a
# build that holds every layer's Gram matrices at once needs 17.9 GB on this shape). Rows are
# printed as they are measured, SparseGPT's last.
# Goals (issue 16): calibrate / eval RSS <= 0.4x and read ~1x the weight bytes; SparseGPT < 3 GB;
# default static <= 1.5x textbook static.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/st-bench-stream}
BUILD=${2:-$ROOT/build}
BASELINE=${BASELINE:-}
SPARSEGPT=${SPARSEGPT:-1}
SAMPLES=${SAMPLES:-8}
SEQ_LEN=${SEQ_LEN:-128}
MODEL=$WORK/llama-1b
DATA=(--data "$ROOT/tests/fixtures/data/calib_ids.jsonl" --samples "$SAMPLES" --seq-len "$SEQ_LEN")

for b in "$BUILD" ${BASELINE:+"$BASELINE"}; do
  for t in st-calibrate st-eval st-quant-w8a8 st-sparsify; do
    [[ -x $b/$t ]] || { echo "bench-stream: no $b/$t (build first)" >&2; exit 2; }
  done
done
mkdir -p "$WORK"
trap 'rm -rf "$MODEL" "$WORK"/out-* "$WORK"/stats-*.st' EXIT
python3 "$ROOT/scripts/gen-llama-checkpoint.py" "$MODEL" >/dev/null
WEIGHTS=$(stat -c %s "$MODEL/model.safetensors")

# measure CMD...: runs CMD with the checkpoint out of the page cache; prints
# "SECONDS PEAK_RSS_BYTES READ_BYTES".
measure() {
  python3 - "$MODEL/model.safetensors" "$@" <<'PY'
import os, resource, subprocess, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(fd)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
def read_bytes():
    return next(int(l.split()[1]) for l in open("/proc/self/io") if l.startswith("read_bytes:"))
before, t0 = read_bytes(), time.monotonic()
rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL).returncode
seconds, read = time.monotonic() - t0, read_bytes() - before
if rc != 0:
    sys.exit(f"bench-stream: {' '.join(sys.argv[2:])} exited {rc}")
print(f"{seconds:.2f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024} {read}")
PY
}
# cached_seconds CMD...: wall seconds of CMD with the checkpoint page-cached.
cached_seconds() {
  cat "$MODEL/model.safetensors" >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b - a}'
}

# rows_for NAME BUILD: fills NAME_* with BUILD's measurements.
rows_for() {
  local name=$1 b=$2 s out
  s=$WORK/stats-$name.st
  read -r t r io < <(measure "$b/st-calibrate" "$MODEL" "${DATA[@]}" -o "$s" -q --force)
  printf -v "${name}_cal" '%s %s %s' "$t" "$r" "$io"
  read -r t r io < <(measure "$b/st-eval" "$MODEL" "${DATA[@]}" -q)
  printf -v "${name}_eval" '%s %s %s' "$t" "$r" "$io"
  out=$WORK/out-$name
  rm -rf "$out"
  t=$(cached_seconds "$b/st-quant-w8a8" "$MODEL" --stats "$s" --anti-outlier none --act-method minmax -o "$out" -q)
  rm -rf "$out"
  printf -v "${name}_textbook" '%s' "$t"
  t=$(cached_seconds "$b/st-quant-w8a8" "$MODEL" --stats "$s" -o "$out" -q)
  rm -rf "$out"
  printf -v "${name}_default" '%s' "$t"
}

rows_for new "$BUILD"
[[ -n $BASELINE ]] && rows_for base "$BASELINE"
gb() { awk -v b="$1" 'BEGIN{printf "%.2f", b / 1e9}'; }
echo "model: $(gb "$WEIGHTS") GB of fp16 weights (TinyLlama-1.1B shape); data: $SAMPLES x $SEQ_LEN tokens; $(nproc) cores"
printf '%-40s %12s %12s %9s  %s\n' "row" "new" "baseline" "new/base" "goal"
# row LABEL NEW BASE GOAL
row() {
  awk -v l="$1" -v n="$2" -v b="$3" -v g="$4" 'BEGIN{
    printf "%-40s %12s %12s %9s  %s\n", l, n, (b == "" ? "-" : b), (b == "" || b + 0 == 0 ? "-" : sprintf("%.2fx", n / b)), g}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a / b}'; }
field() { awk -v i="$2" '{print $i}' <<<"$1"; }
for tool in cal eval; do
  label=$([[ $tool == cal ]] && echo st-calibrate || echo st-eval)
  n=${tool}; nv=new_$n; bv=base_$n
  bval=${!bv:-}
  row "$label seconds (cold cache)" "$(field "${!nv}" 1)" "${bval:+$(field "$bval" 1)}" ""
  row "$label peak RSS / weight bytes" "$(ratio "$(field "${!nv}" 2)" "$WEIGHTS")" \
    "${bval:+$(ratio "$(field "$bval" 2)" "$WEIGHTS")}" "<= 0.4"
  row "$label bytes read / weight bytes" "$(ratio "$(field "${!nv}" 3)" "$WEIGHTS")" \
    "${bval:+$(ratio "$(field "$bval" 3)" "$WEIGHTS")}" "~ 1"
done
row "static textbook seconds (cached)" "$new_textbook" "${base_textbook:-}" ""
row "static default seconds (cached)" "$new_default" "${base_default:-}" ""
row "static default / textbook" "$(ratio "$new_default" "$new_textbook")" \
  "${base_default:+$(ratio "$base_default" "$base_textbook")}" "<= 1.5"
if [[ $SPARSEGPT == 1 ]]; then
  read -r t r io < <(measure "$BUILD/st-sparsify" "$MODEL" --stats "$WORK/stats-new.st" --method sparsegpt \
    -o "$WORK/out-sparse" -q)
  rm -rf "$WORK/out-sparse"
  row "SparseGPT seconds" "$t" "" ""
  row "SparseGPT peak RSS (GB)" "$(gb "$r")" "" "< 3"
fi
