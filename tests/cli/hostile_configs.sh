#!/usr/bin/env bash
# config.json is read once (libst/arch/config.hpp) and its numbers are checked: a rope_theta of 0
# (perplexity -nan, exit 0 before), a zero RoPE factor, a deeply nested member (a stack overflow
# when re-serialised, or a 20 KB config amplified into hundreds of MB) are refused by every tool
# with one line naming config.json and the key (exit 2); st-verify reports them (exit 1).
source "$(dirname "$0")/lib.sh"
FP16=$ST_FIXTURES/llama-4m-fp16
DATA=$ST_FIXTURES/data/eval_512x128.u32

model_with() {  # PYTHON-EDIT-OF-c: a copy of llama-4m-fp16 in $TMP/m with config.json edited
  rm -rf "$TMP/m" && mkdir "$TMP/m"
  ln -s "$FP16/model.safetensors" "$TMP/m/model.safetensors"
  python3 - "$FP16/config.json" "$TMP/m/config.json" "$1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[3])
open(sys.argv[2], "w").write(c if isinstance(c, str) else json.dumps(c))
PY
}
refused() {  # MESSAGE: every reader of the config refuses it
  expect_exit 2 "$ST_BIN/st-eval" "$TMP/m" --data "$DATA" --samples 1 --seq-len 16 -q
  expect_stderr_one_line
  expect_stderr_contains "'$TMP/m/config.json'"
  expect_stderr_contains "$1"
  expect_stdout_empty
  expect_exit 2 "$ST_BIN/st-calibrate" "$TMP/m" --data "$DATA" --samples 1 --seq-len 16 -o "$TMP/s.st" -q
  expect_stderr_contains "$1"
  expect_no_file "$TMP/s.st"
  expect_exit 2 "$ST_BIN/st-quant-w8a8" "$TMP/m" --dynamic -o "$TMP/q" -q
  expect_stderr_one_line
  expect_stderr_contains "$1"
  expect_no_file "$TMP/q"
  expect_exit 2 "$ST_BIN/st-shard" "$TMP/m" --tp 2 -o "$TMP/p" -q
  expect_stderr_contains "$1"
  expect_no_file "$TMP/p"
}

note "rope_theta 0, negative, or a zero scaling factor"
model_with 'c["rope_parameters"]["rope_theta"] = 0'
refused "'rope_theta' is 0, not a finite number above 1"
model_with 'del c["rope_parameters"]; c["rope_theta"] = -500000.0'
refused "'rope_theta' is -500000"
model_with 'c["rope_parameters"].update(rope_type="linear", factor=0.0)'
refused "'factor' is 0, not a finite number above 0"
model_with 'c["num_key_value_heads"] = 0'
refused "'num_key_value_heads' is 0: it must be positive"

note "st-verify reports a meaningless config of a quantized checkpoint"
"$ST_BIN/st-quant-w8a8" "$FP16" --dynamic -o "$TMP/q" -q
python3 - "$TMP/q/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["rope_parameters"]["rope_theta"] = 0
json.dump(c, open(sys.argv[1], "w"))
PY
expect_exit 1 "$ST_BIN/st-verify" "$TMP/q" -q
expect_stdout_contains "structure: '$TMP/q/config.json': 'rope_theta' is 0"

note "a deeply nested member: refused at once, not re-serialised"
model_with 'c["x"] = "__NEST__"; c = json.dumps(c).replace("\"__NEST__\"", "[" * 10000 + "]" * 10000)'
expect_exit 2 timeout 20 "$ST_BIN/st-quant-w8a8" "$TMP/m" --dynamic -o "$TMP/q2" -q
expect_stderr_one_line
expect_stderr_contains "'$TMP/m': config.json nests deeper than the format allows (32 levels)"
expect_no_file "$TMP/q2"
# The same nesting, shallow enough to be read, is copied with a bounded size.
model_with 'c["x"] = "__NEST__"; c = json.dumps(c).replace("\"__NEST__\"", "[" * 30 + "]" * 30)'
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$TMP/m" --dynamic -o "$TMP/q3" -q
(( $(stat -c %s "$TMP/q3/config.json") < 100000 )) || fail "config.json grew to $(stat -c %s "$TMP/q3/config.json") bytes"
