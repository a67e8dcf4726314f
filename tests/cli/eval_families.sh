#!/usr/bin/env bash
# The other config families load and run on tiny random models (tests/cli/tiny_model.py):
# qwen2 uses its q/k/v biases (so it differs from the same weights as llama), mistral without a
# sliding window equals llama, qwen3 needs its q_norm / k_norm tensors (named when missing).
source "$(dirname "$0")/lib.sh"
TINY=$ST_TESTS/cli/tiny_model.py
python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<16I",*[i%30 for i in range(16)]))' >"$TMP/t.u32"
ppl() {
  expect_exit 0 "$ST_BIN/st-eval" "$1" --data "$TMP/t.u32" --seq-len 8 --json -q
  json_query 'd["perplexity"]'
}
python3 "$TINY" "$TMP/llama" --model-type llama
python3 "$TINY" "$TMP/mistral" --model-type mistral
python3 "$TINY" "$TMP/qwen2" --model-type qwen2 --bias
python3 "$TINY" "$TMP/qwen3" --model-type qwen3
llama=$(ppl "$TMP/llama")
expect_eq "$(ppl "$TMP/mistral")" "$llama" "mistral = llama without a sliding window"
qwen2=$(ppl "$TMP/qwen2")
python3 -c 'import math,sys; q,l=map(float,sys.argv[1:]); sys.exit(0 if math.isfinite(q) and q != l else 1)' "$qwen2" "$llama" ||
  fail "qwen2 with biases: perplexity $qwen2 (llama $llama)"
expect_exit 2 "$ST_BIN/st-eval" "$TMP/qwen3" --data "$TMP/t.u32" --seq-len 8
expect_stderr_one_line
expect_stderr_contains "model.layers.0.self_attn.q_norm.weight"
note "llama/mistral $llama, qwen2 $qwen2"
