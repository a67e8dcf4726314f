#!/usr/bin/env bash
# The demo: builds st-tools if needed, then runs the whole pipeline on the embedded fixture model
# (tests/fixtures/llama-4m-fp16) with text data: inspect, tokenize, calibrate, quantize (static W8A8), verify, evaluate,
# shard for tensor parallelism and merge back, sparsify and compress per rank.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/st-inspect ] || bash scripts/build.sh >&2
bin=build
model=tests/fixtures/llama-4m-fp16
data=tests/fixtures/data
work=${DEMO_DIR:-$(mktemp -d -t st-demo-XXXXXX)}
mkdir -p "$work"
step() { printf '\n== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }

step "what is in the float model" $bin/st-inspect "$model" --filter '*layers.0.*'
step "token ids of the calibration text, with the model's tokenizer.json" \
  $bin/st-tokenize --count "$model" $data/calib_text.jsonl
step "activation statistics from 16 calibration texts (tokenized as above)" \
  $bin/st-calibrate "$model" --data $data/calib_text.jsonl --samples 16 -o "$work/stats.safetensors"
step "static W8A8 in the MindIE layout" \
  $bin/st-quant-w8a8 "$model" --stats "$work/stats.safetensors" -o "$work/w8a8" -f
step "the quantized checkpoint" $bin/st-inspect "$work/w8a8" --filter '*layers.0.self_attn.q_proj*'
step "verify it against the float model" $bin/st-verify "$work/w8a8" --against "$model"
step "perplexity and KL divergence on 8 evaluation texts" \
  $bin/st-eval "$model" --quant "$work/w8a8" --data $data/eval_text.jsonl --samples 8
step "shard for tensor parallelism 2" $bin/st-shard "$work/w8a8" --tp 2 -o "$work/tp2" -f
step "merge back: bit-identical" $bin/st-shard --merge "$work/tp2" -o "$work/merged" -f
step "compare: same tensors, same bytes" $bin/st-inspect --diff "$work/w8a8" "$work/merged"
cmp "$work/w8a8/quant_model_weight_w8a8.safetensors" "$work/merged/quant_model_weight_w8a8.safetensors" &&
  echo "weights: byte-identical"
step "50% sparsity (SparseGPT on the calibration text the statistics name) + W8A8S" \
  $bin/st-sparsify "$model" --stats "$work/stats.safetensors" -o "$work/w8a8s" -f
step "shard and compress per rank (W8A8SC)" $bin/st-shard "$work/w8a8s" --tp 2 -o "$work/w8a8s-tp2" -f
$bin/st-compress "$work/w8a8s-tp2" -o "$work/w8a8sc-tp2" -f
step "the compressed parts" $bin/st-verify "$work/w8a8sc-tp2"
printf '\ndemo outputs are in %s\n' "$work"
