#!/usr/bin/env bash
# st-eval reproduces HF transformers' fp32 perplexity (reference_perplexity.json "fp32") on the
# full eval set (128 x 512 tokens) within 0.05 % for llama-4m-fp16 and deepseekv3-mla-6m-fp16.
# ctest: slow
source "$(dirname "$0")/lib.sh"
DATA=$ST_FIXTURES/data/eval_512x128.u32
REF=$ST_FIXTURES/reference/reference_perplexity.json

for m in llama-4m-fp16 deepseekv3-mla-6m-fp16; do
  expect_exit 0 "$ST_BIN/st-eval" "$ST_FIXTURES/$m" --data "$DATA" --json -q
  expect_json
  expect_eq "$(json_query 'd["sequences"]')" 128 "sequences"
  expect_eq "$(json_query 'd["predicted"]')" 65408 "predicted positions (128 x 511)"
  got=$(json_query 'd["perplexity"]')
  want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["fp32"])' "$REF" "$m")
  python3 -c 'import sys; g,w=map(float,sys.argv[1:]); sys.exit(0 if abs(g/w-1) <= 5e-4 else 1)' "$got" "$want" ||
    fail "$m: perplexity $got is not within 0.05 % of the reference $want"
  note "$m: perplexity $got, reference $want"
done
