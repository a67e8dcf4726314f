#!/usr/bin/env bash
# Accuracy beyond the textbook: the DEFAULT static W8A8 of llama-4m-fp16 (anti-outlier search +
# act-method auto, every decoder linear quantized) stays within 1 % of float perplexity on an
# eval subset and beats the textbook flags there; each accuracy option works; bad values refuse.
# ctest: slow
source "$(dirname "$0")/lib.sh"
for t in st-calibrate st-quant-w8a8 st-eval; do [[ -x $ST_BIN/$t ]] || fail "needs $t in $ST_BIN"; done
M=$ST_FIXTURES/llama-4m-fp16
Q=$ST_BIN/st-quant-w8a8
EV=(--data "$ST_FIXTURES/data/eval_512x128.u32" --samples 16 --json -q)

expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$ST_FIXTURES/data/calib_ids.jsonl" -q -o "$TMP/calib.st"

# Default: every linear quantized, the methods named on stderr.
expect_exit 0 "$Q" "$M" --stats "$TMP/calib.st" -o "$TMP/default"
expect_stderr_contains "anti-outlier search"
expect_stderr_contains "28 linears W8A8, 0 float"
expect_exit 0 "$ST_BIN/st-eval" "$M" --quant "$TMP/default" "${EV[@]}"
def=$(last_stdout | python3 -c 'import json,sys; print(json.load(sys.stdin)["perplexity_change_percent"])')
python3 -c "import sys; d=float('$def'); sys.exit(0 if abs(d) < 1.0 else 1)" ||
  fail "default static W8A8 is $def % off float perplexity (want within 1 %)"
# The smoothed norms are stored as FLOAT tensors in the model dtype.
grep -q '"model.layers.0.input_layernorm.weight": "FLOAT"' "$TMP/default/quant_model_description.json" ||
  fail "smoothed norm not typed FLOAT"

# The independent checker: DESIGN relations on the smoothed weights, the function unchanged.
expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$M" "$TMP/default" --stats "$TMP/calib.st" --smoothed
# st-verify --against accepts it: smoothing marks the rewritten weights (st.quant.weights_updated)
expect_exit 0 "$ST_BIN/st-verify" "$TMP/default" --against "$M" -q

# Textbook flags reproduce the old behaviour and are worse on the same subset.
expect_exit 0 "$Q" "$M" --stats "$TMP/calib.st" --anti-outlier none --act-method minmax -q -o "$TMP/textbook"
expect_exit 0 "$ST_BIN/st-eval" "$M" --quant "$TMP/textbook" "${EV[@]}"
tb=$(last_stdout | python3 -c 'import json,sys; print(json.load(sys.stdin)["perplexity_change_percent"])')
python3 -c "import sys; sys.exit(0 if float('$def') < float('$tb') else 1)" ||
  fail "default ($def %) is not better than textbook ($tb %)"

# Each option works.
for ao in smoothquant smoothquant:0.6 smoothquant-all:0.5 search none; do
  expect_exit 0 "$Q" "$M" --stats "$TMP/calib.st" --anti-outlier "$ao" --act-method minmax -o "$TMP/ao" -f
  [[ $ao == none ]] || expect_stderr_contains "anti-outlier $ao"
done
expect_exit 0 "$Q" "$M" --stats "$TMP/calib.st" --anti-outlier none --act-method mse -o "$TMP/mse" -f
expect_stderr_matches "act-method mse: [1-9][0-9]* of 28 input ranges clipped"
expect_exit 0 "$Q" "$M" --stats "$TMP/calib.st" --fallback 2 -o "$TMP/fb" -f
[[ $(last_stderr | grep -c "fallback: kept") == 2 ]] || fail "--fallback 2 did not name two kept groups"
expect_stderr_matches "linears W8A8, [1-9][0-9]* float"
expect_exit 0 "$ST_BIN/st-eval" "$TMP/fb" --data "$ST_FIXTURES/data/eval_512x128.u32" --samples 2 --seq-len 64 -q

# Refusals: one line, exit 2, nothing written.
expect_exit 2 "$Q" "$M" --stats "$TMP/calib.st" --anti-outlier bogus -o "$TMP/bad"
expect_stderr_one_line
expect_exit 2 "$Q" "$M" --stats "$TMP/calib.st" --anti-outlier smoothquant:2 -o "$TMP/bad"
expect_exit 2 "$Q" "$M" --stats "$TMP/calib.st" --act-method bogus -o "$TMP/bad"
expect_exit 2 "$Q" "$M" --dynamic --fallback 1 -o "$TMP/bad"
expect_exit 2 "$Q" - --stats "$TMP/calib.st" --anti-outlier smoothquant -o "$TMP/bad" </dev/null
expect_no_file "$TMP/bad"
exit 0
