#!/usr/bin/env bash
# st-inspect - reads a safetensors stream from a pipe: the same listing as the file,
# metadata side files (config, description) honoured, truncation refused.
source "$(dirname "$0")/lib.sh"
I=$ST_BIN/st-inspect
M=$ST_FIXTURES/llama-4m-fp16/model.safetensors

cat "$M" | expect_exit_piped 0 "$I" -
expect_stdout_contains "layout: stream (1 file)"
grep -v '^layout:' "$OUT_FILE" >"$TMP/pipe.txt"
grep -v '^layout:' "$ST_TESTS/cli/golden/inspect_llama_fp16.txt" >"$TMP/file.txt"
expect_same "$TMP/pipe.txt" "$TMP/file.txt"

cat "$M" | expect_exit_piped 0 "$I" --json --filter '*embed*' -
expect_json
expect_eq "$(json_query 'd["files"]')" '["<stdin>"]'
expect_eq "$(json_query '[(t["name"], t["dtype"], t["shape"]) for t in d["tensors"]]')" '[["model.embed_tokens.weight", "F16", [8192, 256]]]'

# --diff with one side on stdin (spooled, so --values can read it).
cat "$M" | expect_exit_piped 0 "$I" --diff --values - "$ST_FIXTURES/llama-4m-fp16"
expect_stdout_contains "equal"
cat "$ST_FIXTURES/llama-4m-bf16/model.safetensors" | expect_exit_piped 1 "$I" --diff --detail "$M" -
expect_stdout_contains "dtype: model.norm.weight: F16 -> BF16"

# Redirected (seekable) stdin works the same.
expect_exit_in "$M" 0 "$I" -
expect_stdout_contains "tensors: 39,"

# A stream whose __metadata__ carries a description: the TYPE column and summary appear.
python3 - "$TMP/q.safetensors" <<'PY'
import json, struct, sys
desc = {"model_quant_type": "W8A8", "fa_quant_type": "FAQuant", "w.weight": "W8A8", "n.weight": "FLOAT"}
meta = {"st.file.quant_model_description.json": json.dumps(desc), "st.file.config.json": "{}"}
header = {"__metadata__": meta,
          "w.weight": {"dtype": "I8", "shape": [2, 4], "data_offsets": [0, 8]},
          "n.weight": {"dtype": "F16", "shape": [4], "data_offsets": [8, 16]}}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(text)) + text + bytes(16))
PY
cat "$TMP/q.safetensors" | expect_exit_piped 0 "$I" -
expect_stdout_matches '^w.weight +I8 +\[2, 4\] +8 +W8A8$'
expect_stdout_contains "model_quant_type: W8A8"
expect_stdout_contains "fa_quant_type: FAQuant"
expect_stdout_contains "type W8A8: 1 tensor, 8 parameters, 8 bytes"

# Truncated and padded streams are refused.
head -c 1000000 "$M" | expect_exit_piped 2 "$I" -
expect_stderr_one_line
expect_stderr_contains "'<stdin>'"
expect_stderr_contains "truncated"
{ cat "$M"; printf 'x'; } | expect_exit_piped 2 "$I" -
expect_stderr_contains "trailing bytes"
: | expect_exit_piped 2 "$I" -
expect_stderr_contains "'<stdin>'"
note "ok"

# A 104-byte stream declaring an 8 GiB tensor: refused as truncated, reading in bounded chunks (it
# allocated the declared 8 GiB first). Run under a 1 GiB address-space limit, except in sanitizer
# builds, whose shadow memory needs more.
python3 - "$TMP/bomb.st" <<'PY'
import struct, sys
h = b'{"big":{"dtype":"U8","shape":[8589934592],"data_offsets":[0,8589934592]}}'
h += b' ' * ((8 - (8 + len(h)) % 8) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"x" * 16)
PY
[[ $(stat -c %s "$TMP/bomb.st") == 104 ]] || fail "bomb is not 104 bytes"
limit=$([[ -n ${ST_SANITIZE:-} ]] && echo unlimited || echo 1048576)
for stats in "" --stats; do
  cat "$TMP/bomb.st" | expect_exit_piped 2 bash -c 'ulimit -v "$0"; exec "$@"' "$limit" "$I" $stats -
  expect_stderr_one_line
  expect_stderr_contains "st-inspect: error: '<stdin>': tensor 'big': stream ended inside tensor data (truncated)"
done
