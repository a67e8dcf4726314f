#!/usr/bin/env bash
# What the output policy (libst/format/output.*: input checks, lock, leftover sweep, exchange
# commit) costs st-quant-w8a8 --dynamic on the page-cached ~2 GiB model of bench-quant.sh: the
# same quantization by a build of the commit before the policy (BASE) and by this build, runs
# interleaved, into a new output and replacing an existing one (-f). The same on the 4 MB
# fixture model, where the policy's fixed costs (realpath, flock, a directory scan, mkdir,
# renameat2, fsync) weigh most, with SMALL_REPS runs.
#
#   scripts/bench-output.sh [WORKDIR] [BUILD_DIR]   (defaults: /tmp/st-bench-quant, build)
#   REPS=7 BASE=<commit> BASE_BUILD=<dir> scripts/bench-output.sh
#
# BASE defaults to the parent of the commit that introduced libst/format/output_inputs.cpp;
# BASE_BUILD, when given, is a build directory of BASE (otherwise one is made in WORKDIR).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/st-bench-quant}
BUILD=${2:-$ROOT/build}
REPS=${REPS:-7}
SMALL_REPS=${SMALL_REPS:-40}
MODEL=$WORK/llama-2g
NEW=$BUILD/st-quant-w8a8
[[ -x $NEW ]] || { echo "bench-output: no $NEW (build first)" >&2; exit 2; }
BASE=${BASE:-$(git -C "$ROOT" log --diff-filter=A --format=%H -1 -- libst/format/output_inputs.cpp)^}
BASE=$(git -C "$ROOT" rev-parse --short "$BASE")

mkdir -p "$WORK"
if [[ -z ${BASE_BUILD:-} ]]; then
  SRC=$WORK/base-$BASE
  [[ -d $SRC ]] || { mkdir -p "$SRC" && git -C "$ROOT" archive "$BASE" | tar -x -C "$SRC"; }
  BASE_BUILD=$SRC/build
  if [[ ! -x $BASE_BUILD/st-quant-w8a8 ]]; then
    echo "bench-output: building st-quant-w8a8 at $BASE in $BASE_BUILD" >&2
    cmake -S "$SRC" -B "$BASE_BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BASE_BUILD" -j"$(nproc)" --target st-quant-w8a8 >/dev/null
  fi
fi
OLD=$BASE_BUILD/st-quant-w8a8
[[ -f $MODEL/model.safetensors ]] || python3 "$ROOT/scripts/gen-llama-checkpoint.py" "$MODEL"
cat "$MODEL/model.safetensors" >/dev/null  # page-cache the input

# seconds CMD...: wall time of one run.
seconds() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b - a) / 1e9}'
}
fresh() { "$1" "$MODEL" --dynamic -o "$WORK/out" -q; }
replace() { "$1" "$MODEL" --dynamic -o "$WORK/out" -q -f; }

# stat_of "T1 T2 ..." median|best|worst
stat_of() {
  tr ' ' '\n' <<<"$1" | grep . | sort -n | awk -v want="$2" '{v[NR] = $1} END {
    if (want == "best") print v[1]; else if (want == "worst") print v[NR];
    else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# table TITLE REPS: both builds, both modes, runs interleaved (which goes first alternates); a row
# per build and a ratio per mode. Removing the last output before a "fresh" run is not timed.
table() {
  local title=$1 reps=$2 mode which bin i v a b
  declare -A T
  for mode in fresh replace; do
    rm -rf "$WORK/out"
    fresh "$NEW"  # warm up; leaves an output for "replace"
    for ((i = 0; i < reps; i++)); do
      for which in $( ((i % 2)) && echo NEW OLD || echo OLD NEW); do
        bin=$([[ $which == OLD ]] && echo "$OLD" || echo "$NEW")
        if [[ $mode == fresh ]]; then rm -rf "$WORK/out" && sync; fi
        T[$mode.$which]+="$(seconds $mode "$bin") "
      done
    done
  done
  rm -rf "$WORK/out"
  printf '%-36s %9s %9s %9s %5s\n' "$title" "median s" "best s" "worst s" "runs"
  for mode in fresh replace; do
    for which in OLD NEW; do
      v=${T[$mode.$which]}
      printf '%-36s %9s %9s %9s %5s\n' "  $mode, $([[ $which == OLD ]] && echo "before ($BASE)" || echo "with the policy")" \
        "$(stat_of "$v" median)" "$(stat_of "$v" best)" "$(stat_of "$v" worst)" "$reps"
    done
    a=$(stat_of "${T[$mode.OLD]}" median) b=$(stat_of "${T[$mode.NEW]}" median)
    awk -v a="$a" -v b="$b" -v m="$mode" 'BEGIN{printf "%-36s %9.3f (with / before, medians)\n", "  " m ": ratio", b / a}'
  done
}

table "st-quant-w8a8 --dynamic, 2.2 GB model" "$REPS"
MODEL=$ROOT/tests/fixtures/llama-4m-fp16
table "the same, 4 MB fixture model" "$SMALL_REPS"
