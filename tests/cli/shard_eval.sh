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

expect_exit 0 "$ST_BIN/st-quant-w8a8" "$ST_FIXTURES/llama-4m-fp16" --dynamic -q -j 2 -o "$TMP/dyn"
expect_exit 0 "$ST_BIN/st-shard" -q "$TMP/dyn" --tp 4 -o "$TMP/dyn.tp4"
expect_exit 0 "$ST_BIN/st-shard" -q --merge "$TMP/dyn.tp4" -o "$TMP/dyn.merged"
want=$(ppl "$TMP/dyn")
got=$(ppl "$TMP/dyn.merged")
expect_eq "$got" "$want" "W8A8_DYNAMIC perplexity after shard + merge"
note "llama-4m W8A8_DYNAMIC: perplexity $want before and after TP 4"

D=$ST_FIXTURES/deepseekv3-mla-6m-fp16
expect_exit 0 "$ST_BIN/st-shard" -q "$D" --tp 2 -o "$TMP/ds.tp2"
expect_exit 0 "$ST_BIN/st-shard" -q --merge "$TMP/ds.tp2" -o "$TMP/ds.merged"
want=$(ppl "$D")
got=$(ppl "$TMP/ds.merged")
expect_eq "$got" "$want" "DeepSeek perplexity after shard + merge"
note "deepseekv3-mla-6m: perplexity $want before and after TP 2"
