#!/usr/bin/env bash
# Benchmark st-shard (split and merge) on a page-cached ~2 GiB fp16 Llama-shaped checkpoint
# against the floor a user would compare with: copying the same bytes (cp of the weight file
# into the same file system). Prints seconds, ratio to the floor and peak RSS.
#
#   scripts/bench-shard.sh [WORKDIR] [BUILD_DIR] [TP]    (defaults: /tmp/st-bench-quant, build, 4)
#
# Reuses the model scripts/bench-quant.sh generates (scripts/gen-llama-checkpoint.py, TinyLlama
# shape: 32 heads, 4 KV heads, so TP 4 splits KV heads and TP 8 replicates them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${1:-/tmp/st-bench-quant}
BUILD=${2:-$ROOT/build}
TP=${3:-4}
S=$BUILD/st-shard
MODEL=$WORK/llama-2g
[[ -x $S ]] || { echo "bench-shard: no $S (build first)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "bench-shard: needs /usr/bin/time (apt-get install -y time)" >&2; exit 2; }
mkdir -p "$WORK"
[[ -f $MODEL/model.safetensors ]] || python3 "$ROOT/scripts/gen-llama-checkpoint.py" "$MODEL"
BYTES=$(stat -c %s "$MODEL/model.safetensors")
cat "$MODEL/model.safetensors" >/dev/null

timed() {  # CMD...: prints "SECONDS RSS_KB"
  /usr/bin/time -f "%e %M" -o "$WORK/.time" "$@" >/dev/null
  cat "$WORK/.time"
}
rm -rf "$WORK/shard-parts" "$WORK/shard-merged" "$WORK/copy.safetensors"
read -r t_cp rss_cp < <(timed cp "$MODEL/model.safetensors" "$WORK/copy.safetensors")
rm -f "$WORK/copy.safetensors"
read -r t_sh rss_sh < <(timed "$S" -q "$MODEL" --tp "$TP" -o "$WORK/shard-parts")
read -r t_mg rss_mg < <(timed "$S" -q --merge "$WORK/shard-parts" -o "$WORK/shard-merged")
cmp "$MODEL/model.safetensors" "$WORK/shard-merged/model.safetensors" || { echo "bench-shard: merge differs" >&2; exit 1; }
rm -rf "$WORK/shard-parts" "$WORK/shard-merged"
printf 'input: %.2f GB, tp %s\n' "$(echo "$BYTES / 1000000000" | bc -l)" "$TP"
printf '%-28s %8s %8s %10s\n' "" seconds "x floor" "peak RSS"
printf '%-28s %8.2f %8s %7d MB\n' "floor: cp of the weights" "$t_cp" "1.00" $((rss_cp / 1024))
printf '%-28s %8.2f %8.2f %7d MB\n' "st-shard --tp $TP" "$t_sh" "$(echo "$t_sh / $t_cp" | bc -l)" $((rss_sh / 1024))
printf '%-28s %8.2f %8.2f %7d MB\n' "st-shard --merge" "$t_mg" "$(echo "$t_mg / $t_cp" | bc -l)" $((rss_mg / 1024))
