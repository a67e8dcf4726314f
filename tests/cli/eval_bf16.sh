#!/usr/bin/env bash
# llama-4m-bf16 evaluates within 0.1 % of its fp16 twin (same sequences), and the text output
# carries the perplexity and the throughput.
source "$(dirname "$0")/lib.sh"
DATA=$ST_FIXTURES/data/eval_512x128.u32

ppl() {
  expect_exit 0 "$ST_BIN/st-eval" "$ST_FIXTURES/$1" --data "$DATA" --samples 16 --json -q
  expect_eq "$(json_query 'd["sequences"]')" 16 "sequences"
  json_query 'd["perplexity"]'
}
fp16=$(ppl llama-4m-fp16)
bf16=$(ppl llama-4m-bf16)
python3 -c 'import sys; a,b=map(float,sys.argv[1:]); sys.exit(0 if abs(a/b-1) <= 1e-3 else 1)' "$bf16" "$fp16" ||
  fail "bf16 perplexity $bf16 is not within 0.1 % of fp16 $fp16"
note "16 sequences: fp16 $fp16, bf16 $bf16"

# Text output: one perplexity line and a tokens/s line; JSONL data with --seq-len truncation.
expect_exit 0 "$ST_BIN/st-eval" "$ST_FIXTURES/llama-4m-bf16" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 2 --seq-len 64
expect_stdout_matches '^perplexity +[0-9]+\.[0-9]+'
expect_stdout_matches '^tokens/s +[0-9]'
expect_stdout_contains "2 sequences, 128 tokens, 126 predicted"
