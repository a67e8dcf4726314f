#!/usr/bin/env bash
# st-eval takes a directory of tensor-parallel parts directly (merged on load), as MODEL and as
# --quant, and gets the unsharded numbers exactly.
source "$(dirname "$0")/lib.sh"
[[ -x $ST_BIN/st-quant-w8a8 && -x $ST_BIN/st-shard ]] || fail "needs st-quant-w8a8 and st-shard in $ST_BIN"
M=$ST_FIXTURES/llama-4m-fp16
EV=(--data "$ST_FIXTURES/data/eval_512x128.u32" --samples 4 --seq-len 128 --json -q)
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$M" --dynamic -q -o "$TMP/dyn"
expect_exit 0 "$ST_BIN/st-shard" -q "$TMP/dyn" --tp 2 -o "$TMP/parts"
expect_exit 0 "$ST_BIN/st-eval" "$TMP/dyn" "${EV[@]}"
want=$(json_query 'd["perplexity"]')
expect_exit 0 "$ST_BIN/st-eval" "$TMP/parts" "${EV[@]}"
expect_eq "$(json_query 'd["perplexity"]')" "$want" "perplexity of the parts"
expect_exit 0 "$ST_BIN/st-eval" "$M" --quant "$TMP/parts" "${EV[@]}"
expect_eq "$(json_query 'd["perplexity"]')" "$want" "perplexity of the parts as --quant"
note "W8A8_DYNAMIC TP 2 parts: perplexity $want"
