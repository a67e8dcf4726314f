#!/usr/bin/env bash
# Benchmark st-quant-w8a8 (--dynamic, and static textbook / default) on a page-cached ~2 GiB fp16
# Llama-shaped checkpoint against the I/O floor (read the input + write the dynamic output's
# bytes) and a plain numpy implementation of the dynamic quantization.
#
#   scripts/bench-quant.sh [WORKDIR] [BUILD_DIR]      (defaults: /tmp/st-bench-quant, build)
#   REPS=5 scripts/bench-quant.sh                     best of REPS runs per row (default 3)
#   STATIC_ONLY=1 scripts/bench-quant.sh              the floor and the static rows only
#
# Needs /usr/bin/time (Debian package "time") for peak RSS; the numpy row needs python3-numpy
# for /usr/bin/python3 and is skipped without it. The model is generated once by
# scripts/gen-llama-checkpoint.py (TinyLlama-1.1B shape, 2.2 GB) and reused.
# Targets (issue 4): st-quant-w8a8 --dynamic <= 2x the floor (goal 1.2x), peak RSS <= 512 MiB.
# Issue 16: default static (alpha search + act-method auto) at most 1.5x textbook static.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/st-bench-quant}
BUILD=${2:-$ROOT/build}
REPS=${REPS:-3}
STATIC_ONLY=${STATIC_ONLY:-0}
Q=$BUILD/st-quant-w8a8
MODEL=$WORK/llama-2g
OUT=$WORK/out

[[ -x $Q ]] || { echo "bench-quant: no $Q (build first: cmake -B build -G Ninja && cmake --build build)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "bench-quant: needs /usr/bin/time (apt-get install -y time)" >&2; exit 2; }
mkdir -p "$WORK"
[[ -f $MODEL/model.safetensors ]] || python3 "$ROOT/scripts/gen-llama-checkpoint.py" "$MODEL"
IN_BYTES=$(stat -c %s "$MODEL/model.safetensors")
cat "$MODEL/model.safetensors" >/dev/null  # page-cache the input

# timed CMD...: runs CMD under /usr/bin/time; prints "SECONDS RSS_KB".
timed() {
  /usr/bin/time -f "%e %M" -o "$WORK/.time" "$@" >/dev/null
  cat "$WORK/.time"
}
# best_of VAR CMD...: best wall time (and that run's RSS) over REPS runs; CMD cleans up itself.
best_of() {
  local var=$1 best="" t r
  shift
  for ((i = 0; i < REPS; i++)); do
    read -r t r < <(timed "$@")
    if [[ -z $best ]] || awk -v a="$t" -v b="${best% *}" 'BEGIN{exit !(a<b)}'; then best="$t $r"; fi
  done
  printf -v "$var" '%s' "$best"
}

run_ours() { rm -rf "$OUT"; "$Q" "$MODEL" --dynamic -o "$OUT" -q; }
run_ours
OUT_BYTES=$(cat "$OUT"/quant_model_weight_w8a8_dynamic*.safetensors | wc -c)

floor_read() { cat "$MODEL/model.safetensors" >/dev/null; }
floor_write() { rm -f "$OUT/floor.bin"; head -c "$OUT_BYTES" "$MODEL/model.safetensors" >"$OUT/floor.bin"; }
export -f run_ours floor_read floor_write
export Q MODEL OUT OUT_BYTES

best_of READ bash -c floor_read
best_of WRITE bash -c floor_write
rm -f "$OUT/floor.bin"
FLOOR=$(awk -v a="${READ% *}" -v b="${WRITE% *}" 'BEGIN{printf "%.2f", a + b}')
# The same quantization written as a stream into a file: no fsync and no checksum pass, like the floor.
run_stream() { rm -f "$OUT/stream.safetensors"; "$Q" "$MODEL" --dynamic -o - -q >"$OUT/stream.safetensors"; }
export -f run_stream
if [[ $STATIC_ONLY == 0 ]]; then
  best_of OURS bash -c run_ours
  best_of STREAM bash -c run_stream
  rm -f "$OUT/stream.safetensors"
fi

# Static W8A8: statistics from 2 short calibration sequences (enough to exercise every step;
# the ranges of a random model mean nothing), then textbook and default (smoothing search +
# act-method auto) quantization. The alpha search reads each smoothed weight twice more (column
# maxima, then the row scan of every candidate), a tile at a time where it lies.
STATS=$WORK/stats.safetensors
[[ -f $STATS ]] || "$BUILD/st-calibrate" "$MODEL" --data "$ROOT/tests/fixtures/data/calib_ids.jsonl" --samples 2 \
  --seq-len 64 -o "$STATS" -q
run_textbook() { rm -rf "$OUT"; "$Q" "$MODEL" --stats "$STATS" --anti-outlier none --act-method minmax -o "$OUT" -q; }
run_default() { rm -rf "$OUT"; "$Q" "$MODEL" --stats "$STATS" -o "$OUT" -q; }
export -f run_textbook run_default
export STATS
best_of TEXTBOOK bash -c run_textbook
best_of DEFAULT bash -c run_default

# The forward pass on the same model, float and the W8A8 output just written: st-eval on one
# 512-token sequence. Its peak RSS is judged against the weight bytes it runs (weights stay in
# their stored dtype; a tile of rows is converted per GEMM).
EVAL_DATA=$ROOT/tests/fixtures/data/eval_512x128.u32
Q_BYTES=$(cat "$OUT"/quant_model_weight_w8a8*.safetensors | wc -c)
if [[ $STATIC_ONLY == 0 ]]; then
  read -r EVAL_F EVAL_F_RSS < <(timed "$BUILD/st-eval" "$MODEL" --data "$EVAL_DATA" --samples 1 -q)
  read -r EVAL_Q EVAL_Q_RSS < <(timed "$BUILD/st-eval" "$OUT" --data "$EVAL_DATA" --samples 1 -q)
fi

NUMPY=""
if [[ $STATIC_ONLY == 0 ]] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  cat >"$WORK/numpy_w8a8.py" <<'PY'
# The same W8A8_DYNAMIC quantization in plain numpy: per-row symmetric int8 of every decoder
# linear (weight, weight_scale [n,1] fp32, weight_offset zeros), other tensors copied.
import json, struct, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
f = open(src, "rb"); n = struct.unpack("<Q", f.read(8))[0]; hdr = json.loads(f.read(n)); start = 8 + n
meta = hdr.pop("__metadata__", {})
mm = np.memmap(src, dtype=np.uint8, mode="r")
out, plan, off = [], {}, 0
def add(name, arr):
    global off
    plan[name] = {"dtype": {"int8": "I8", "float32": "F32", "float16": "F16"}[str(arr.dtype)],
                  "shape": list(arr.shape), "data_offsets": [off, off + arr.nbytes]}
    off += arr.nbytes
    out.append(arr)
for name, t in sorted(hdr.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    b, e = t["data_offsets"]
    a = mm[start + b:start + e].view(np.float16).reshape(t["shape"])
    if name.startswith("model.layers.") and name.endswith("_proj.weight"):
        w = a.astype(np.float32)
        s = np.maximum(np.abs(w).max(axis=1, keepdims=True) / np.float32(127), np.float32(2.0 ** -23))
        add(name, np.clip(np.rint(w / s), -128, 127).astype(np.int8))
        add(name[:-6] + "weight_scale", s.astype(np.float32))
        add(name[:-6] + "weight_offset", np.zeros_like(s))
    else:
        add(name, np.asarray(a))
hb = json.dumps(plan).encode(); hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)
with open(dst, "wb") as o:
    o.write(struct.pack("<Q", len(hb)) + hb)
    for arr in out:
        o.write(arr.tobytes())
PY
  run_numpy() { rm -f "$OUT/numpy.safetensors"; /usr/bin/python3 "$WORK/numpy_w8a8.py" "$MODEL/model.safetensors" "$OUT/numpy.safetensors"; }
  export -f run_numpy
  export WORK
  best_of NUMPY bash -c run_numpy
  rm -f "$OUT/numpy.safetensors"
fi

row() {  # name seconds rss_kb
  awk -v n="$1" -v t="$2" -v r="$3" -v f="$FLOOR" \
    'BEGIN{printf "%-34s %8.2f %8.2fx %10s\n", n, t, t / f, (r == "" ? "-" : sprintf("%.0f", r / 1024))}'
}
echo "input $(awk -v b="$IN_BYTES" 'BEGIN{printf "%.2f GB", b/1e9}'), output $(awk -v b="$OUT_BYTES" 'BEGIN{printf "%.2f GB", b/1e9}'), best of $REPS, $(nproc) cores"
printf "%-34s %8s %9s %10s\n" "what" "seconds" "vs floor" "peak MiB"
row "floor: cat input >/dev/null" "${READ% *}" ""
row "floor: head -c OUTPUT_BYTES > file" "${WRITE% *}" ""
row "floor (sum)" "$FLOOR" ""
row "st-quant-w8a8 --stats, textbook" "${TEXTBOOK% *}" "${TEXTBOOK#* }"
row "st-quant-w8a8 --stats (default)" "${DEFAULT% *}" "${DEFAULT#* }"
awk -v d="${DEFAULT% *}" -v t="${TEXTBOOK% *}" \
  'BEGIN{printf "%-34s %8.2fx  (goal <= 1.5x)\n", "default / textbook static", d / t}'
[[ $STATIC_ONLY == 0 ]] || exit 0
row "st-quant-w8a8 --dynamic -o DIR" "${OURS% *}" "${OURS#* }"
row "st-quant-w8a8 --dynamic -o - >file" "${STREAM% *}" "${STREAM#* }"
echo "(-o DIR also hashes every output byte for its .xxh3 checksums and fsyncs before the rename;"
echo " the floor and the stream row do neither)"
if [[ -n $NUMPY ]]; then
  row "numpy (same quantization)" "${NUMPY% *}" "${NUMPY#* }"
else
  echo "numpy (same quantization)          skipped: /usr/bin/python3 has no numpy (apt-get install python3-numpy)"
fi
echo
printf "%-34s %8s %10s %16s\n" "st-eval, 1 x 512 tokens" "seconds" "peak MiB" "peak / weights"
for r in "float fp16|$EVAL_F|$EVAL_F_RSS|$IN_BYTES" "W8A8 static (default)|$EVAL_Q|$EVAL_Q_RSS|$Q_BYTES"; do
  IFS='|' read -r n t k b <<<"$r"
  awk -v n="$n" -v t="$t" -v k="$k" -v b="$b" 'BEGIN{printf "%-34s %8.2f %10.0f %15.2fx\n", n, t, k / 1024, k * 1024 / b}'
done
