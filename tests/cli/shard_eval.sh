#!/usr/bin/env bash
# Parts evaluate to the unsharded perplexity: st-eval on the model merged back from its TP parts
# (W8A8_DYNAMIC llama-4m at TP 4, float DeepSeek MLA at TP 2) gives the original's number exactly.
source "$(dirname "$0")/lib.sh"
[[ -x $ST_BIN/st-eval && -x $ST_BIN/st-quant-w8a8 ]] || fail "needs st-eval and st-quant-w8a8 in $ST_BIN"
DATA=$ST_FIXTURES/data/eval_512x128.u32

ppl() {  # CKPT: perplexity on 4 x 128 tokens
  expect_exit 0 "$ST_BIN/st-eval" "$1" --data "$DATA" --samples 4 --seq-len 128 --json -q -j 2
  json_query 'd["perplexity"]'
}

# same_after_tp CKPT TP LABEL: shard CKPT into TP parts, merge them back, and expect the merged
# checkpoint's perplexity to equal the original's exactly.
same_after_tp() {
  local ckpt=$1 tp=$2 label=$3 want got
  expect_exit 0 "$ST_BIN/st-shard" -q "$ckpt" --tp "$tp" -o "$TMP/$label.tp$tp"
  expect_exit 0 "$ST_BIN/st-shard" -q --merge "$TMP/$label.tp$tp" -o "$TMP/$label.merged"
  want=$(ppl "$ckpt")
  got=$(ppl "$TMP/$label.merged")
  expect_eq "$got" "$want" "$label perplexity after shard + merge"
  note "$label: perplexity $want before and after TP $tp"
}

expect_exit 0 "$ST_BIN/st-quant-w8a8" "$ST_FIXTURES/llama-4m-fp16" --dynamic -q -j 2 -o "$TMP/dyn"
same_after_tp "$TMP/dyn" 4 llama-4m-W8A8_DYNAMIC
same_after_tp "$ST_FIXTURES/deepseekv3-mla-6m-fp16" 2 deepseekv3-mla-6m
