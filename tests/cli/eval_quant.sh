#!/usr/bin/env bash
# st-eval runs quantized checkpoints as their files describe (W8A8 static from st-calibrate's
# statistics, W8A8_DYNAMIC), both as MODEL and with --quant against the float model: the float
# side reproduces the plain float run, KL and top-1 are sane, the quantized model stays close.
source "$(dirname "$0")/lib.sh"
[[ -x $ST_BIN/st-quant-w8a8 ]] || fail "needs st-quant-w8a8 in $ST_BIN"
M=$ST_FIXTURES/llama-4m-fp16
DATA=$ST_FIXTURES/data/eval_512x128.u32
EV=(--data "$DATA" --samples 4 --seq-len 256 --json -q)

expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 8 -q -o "$TMP/calib.st"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$M" --stats "$TMP/calib.st" -q -o "$TMP/static"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$M" --dynamic -q -o "$TMP/dynamic"

expect_exit 0 "$ST_BIN/st-eval" "$M" "${EV[@]}"
float=$(json_query 'd["perplexity"]')
for q in static dynamic; do
  expect_exit 0 "$ST_BIN/st-eval" "$TMP/$q" "${EV[@]}"
  alone=$(json_query 'd["perplexity"]')
  expect_exit 0 "$ST_BIN/st-eval" "$M" --quant "$TMP/$q" --kl-divergence "${EV[@]}"
  expect_json
  expect_eq "$(json_query 'd["float_perplexity"]')" "$float" "$q: float side of --quant"
  expect_eq "$(json_query 'd["perplexity"]')" "$alone" "$q: judged side of --quant"
  json_query '0 < d["kl_mean"] <= d["kl_p99"] <= d["kl_max"] < 5 and 0.8 < d["top1_agreement"] < 1' >"$TMP/ok"
  expect_eq "$(cat "$TMP/ok")" True "$q: KL and top-1 ranges"
  python3 -c 'import sys; q,f=map(float,sys.argv[1:]); sys.exit(0 if f < q < f*1.05 else 1)' "$alone" "$float" ||
    fail "$q: perplexity $alone not within 5 % above float $float"
  note "$q: perplexity $alone (float $float), kl_mean $(json_query 'd["kl_mean"]'), top-1 $(json_query 'd["top1_agreement"]')"
done

# Attention quantization only (all linears float): st-eval applies the per-head int8 q/k/v
# (FAQuant) or the absorbed-q / latent int8 MLA path (FAKQuant): close to float, not equal.
D=$ST_FIXTURES/deepseekv3-mla-6m-fp16
expect_exit 0 "$ST_BIN/st-calibrate" "$D" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 8 -q -o "$TMP/calib-ds.st"
for pair in "$M:$TMP/calib.st" "$D:$TMP/calib-ds.st"; do
  model=${pair%%:*} stats=${pair#*:}
  rm -rf "$TMP/fa"
  expect_exit 0 "$ST_BIN/st-quant-w8a8" "$model" --stats "$stats" --fa-quant --float 'model.layers.*' -q -o "$TMP/fa"
  expect_exit 0 "$ST_BIN/st-eval" "$model" --quant "$TMP/fa" "${EV[@]}"
  got=$(json_query 'd["perplexity"]')
  float=$(json_query 'd["float_perplexity"]')
  python3 -c 'import sys; q,f=map(float,sys.argv[1:]); sys.exit(0 if f != q and abs(q/f-1) < 0.01 else 1)' "$got" "$float" ||
    fail "$(basename "$model") attention-quantized perplexity $got vs float $float"
  note "$(basename "$model") attention quantization only: perplexity $got (float $float)"
done
