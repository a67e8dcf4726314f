#!/usr/bin/env bash
# Activation statistics are checked where they are read (libst/format/stats.hpp): an all-zero or
# denormal range, NaN / Inf, a negative magnitude or an inverted range is refused with one line
# naming the statistics file and tensor (exit 2). Such statistics quantized with exit 0 to a model
# with perplexity 8196 (10.86 with good statistics).
source "$(dirname "$0")/lib.sh"
FAULT="python3 $ST_TESTS/cli/verify_faults.py"
FP16=$ST_FIXTURES/llama-4m-fp16
P=model.layers.1.mlp.down_proj
$FAULT stats "$ST_FIXTURES/reference/calibstats_llama-4m-fp16.json" "$TMP/good.st"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$FP16" --stats "$TMP/good.st" -o "$TMP/ok" -q

refused() {  # STATS TENSOR MESSAGE
  expect_exit 2 "$ST_BIN/st-quant-w8a8" "$FP16" --stats "$1" -o "$TMP/q"
  expect_stderr_one_line
  expect_stderr_contains "'$1': tensor '$2': statistics $3"
  expect_no_file "$TMP/q"
  expect_exit 2 "$ST_BIN/st-sparsify" "$FP16" --stats "$1" --method magnitude -o "$TMP/s"
  expect_stderr_contains "'$1': tensor '$2': statistics $3"
}
bad() {  # "TENSOR=VALUE ..." TENSOR MESSAGE: good statistics with those tensors filled
  cp "$TMP/good.st" "$TMP/bad.st"
  for fill in $1; do $FAULT fill "$TMP/bad.st" "${fill%%=*}" "${fill#*=}"; done
  refused "$TMP/bad.st" "$2" "$3"
}

note "all-zero and denormal ranges"
bad "$P.input_min=0 $P.input_max=0 $P.input_absmax=0" "$P.input_max" "range is all zero or denormal"
bad "$P.input_min=-1e-40 $P.input_max=1e-40 $P.input_absmax=1e-40" "$P.input_max" "range is all zero or denormal"
note "NaN, Inf, negative magnitudes, inverted ranges"
bad "$P.input_max=nan" "$P.input_max" "hold NaN or Inf"
bad "$P.input_min=-inf" "$P.input_min" "hold NaN or Inf"
bad "$P.input_absmax=-3" "$P.input_absmax" "hold NaN, Inf or a negative magnitude"
bad "$P.input_absmax=nan" "$P.input_absmax" "hold NaN, Inf or a negative magnitude"
bad "$P.input_sumsq=-1" "$P.input_sumsq" "hold NaN, Inf or a negative sum of squares"
bad "$P.input_min=5 $P.input_max=1" "$P.input_min" "range is inverted"
