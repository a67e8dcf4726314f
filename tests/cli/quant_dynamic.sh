#!/usr/bin/env bash
# st-quant-w8a8 --dynamic on the three fixtures, checked independently; file splitting.
# ctest: slow
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8

for m in llama-4m-fp16 llama-4m-bf16 deepseekv3-mla-6m-fp16; do
  expect_exit 0 "$Q" "$ST_FIXTURES/$m" --dynamic -o "$TMP/$m" -j 2
  expect_stdout_empty
  expect_file "$TMP/$m/quant_model_weight_w8a8_dynamic.safetensors"
  expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$ST_FIXTURES/$m" "$TMP/$m"
  expect_stdout_contains "W8A8_DYNAMIC checked"
  expect_eq "$(json_query 'd["model_quant_type"]' "$TMP/$m/quant_model_description.json")" W8A8_DYNAMIC type
  expect_eq "$(json_query 'd["quantize"]' "$TMP/$m/config.json")" w8a8_dynamic "config.json quantize"
done
# No static parameters in a dynamic output.
expect_eq "$(json_query 'len([k for k in d if k.endswith(("input_scale", "deq_scale", "quant_bias"))])' \
  "$TMP/llama-4m-fp16/quant_model_description.json")" 0 "static tensors"

# Same output with 1 thread (deterministic).
expect_exit 0 "$Q" "$ST_FIXTURES/llama-4m-fp16" --dynamic -o "$TMP/j1" -j 1
expect_same "$TMP/j1/quant_model_weight_w8a8_dynamic.safetensors" \
  "$TMP/llama-4m-fp16/quant_model_weight_w8a8_dynamic.safetensors"

# --max-file-size: numbered files plus an index that maps every tensor; the same tensors.
expect_exit 0 "$Q" "$ST_FIXTURES/llama-4m-fp16" --dynamic -o "$TMP/split" --max-file-size 4M
n=$(ls "$TMP/split" | grep -c '^quant_model_weight_w8a8_dynamic-0000[0-9]-of-0000[0-9].safetensors$')
((n >= 3)) || fail "expected >= 3 split files, got $n"
expect_file "$TMP/split/quant_model_weight_w8a8_dynamic.safetensors.index.json"
expect_no_file "$TMP/split/quant_model_weight_w8a8_dynamic.safetensors"
expect_eq "$(json_query 'len(d["weight_map"])' "$TMP/split/quant_model_weight_w8a8_dynamic.safetensors.index.json")" \
  "$(json_query 'len(d) - 1' "$TMP/split/quant_model_description.json")" "index entries"
for f in "$TMP"/split/quant_model_weight_w8a8_dynamic-*.safetensors; do
  s=$(stat -c %s "$f")
  ((s <= 4 * 1048576 + 65536)) || fail "$f is $s bytes"
done
expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$ST_FIXTURES/llama-4m-fp16" "$TMP/split"
expect_exit 2 "$Q" "$ST_FIXTURES/llama-4m-fp16" --dynamic -o "$TMP/bad" --max-file-size 12X
expect_stderr_one_line
expect_stderr_contains "not a size"
