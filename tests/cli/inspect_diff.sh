#!/usr/bin/env bash
# st-inspect --diff A B: exit 0 equal, 1 different, 2 error; dtype/shape/type/description
# changes listed; --values; two description .json files compared directly.
source "$(dirname "$0")/lib.sh"
cd "$ST_FIXTURES"
I=$ST_BIN/st-inspect

# Equal: the directory against its own file, also with --values.
expect_exit 0 "$I" --diff llama-4m-fp16 llama-4m-fp16/model.safetensors
expect_stdout_lines 1
expect_stdout_contains "equal"
expect_exit 0 "$I" --diff --detail --values --filter '*layers.0.mlp*' llama-4m-fp16 llama-4m-fp16/model.safetensors
expect_stdout_contains "values: model.layers.0.mlp.down_proj.weight: identical"

# fp16 vs bf16: exit 1; summarised by default (one group per name suffix and the layers it
# spans); --detail lists every tensor's dtype change.
expect_exit 1 "$I" --diff llama-4m-fp16 llama-4m-bf16
expect_golden inspect_diff_fp16_bf16_summary.txt
expect_exit 1 "$I" --diff --detail llama-4m-fp16 llama-4m-bf16
expect_golden inspect_diff_fp16_bf16.txt
[[ $(grep -c '^dtype: .*: F16 -> BF16$' "$OUT_FILE") == 39 ]] || fail "expected 39 dtype changes"
expect_exit 1 "$I" --diff --json llama-4m-fp16 llama-4m-bf16
expect_json
expect_eq "$(json_query 'd["equal"]')" "False"
expect_eq "$(json_query 'len(d["changed"])')" "39"
expect_eq "$(json_query 'd["changed"][0]["b"]')" '{"dtype": "BF16", "shape": [8192, 256]}'
expect_eq "$(json_query 'sum(g["count"] for g in d["summary"])')" "39"
expect_eq "$(json_query '[g for g in d["summary"] if g["what"] == "*.weight: F16 -> BF16"][0]["layers"]')" "[0, 1, 2, 3]"
expect_exit 1 "$I" --diff --values --json --filter '*norm*' llama-4m-fp16 llama-4m-bf16
expect_json
expect_eq "$(json_query 'len(d["values"])')" "9"
expect_eq "$(json_query 'all(v["comparable"] and v["cosine"] > 0.999 for v in d["values"])')" "True"

# Different models: tensors only in one side, shapes changed.
expect_exit 1 "$I" --diff llama-4m-fp16 deepseekv3-mla-6m-fp16
expect_stdout_matches '^only in B: [0-9]+ tensors$'
expect_stdout_matches '^different: [0-9]+ only in A, [0-9]+ only in B, .* \(--detail lists each tensor\)$'
expect_exit 1 "$I" --diff --detail llama-4m-fp16 deepseekv3-mla-6m-fp16
expect_stdout_contains "only in A: model.layers.0.self_attn.k_proj.weight"
expect_stdout_contains "only in B: model.layers.0.self_attn.kv_a_proj_with_mqa.weight"
expect_stdout_contains 'shape: model.layers.0.mlp.down_proj.weight: [256, 688] -> [256, 768]'
expect_stdout_matches '^different: [0-9]+ only in A, [0-9]+ only in B, '

# Values changed, same dtypes and shapes: only --values sees it.
python3 - llama-4m-fp16/model.safetensors "$TMP/changed.safetensors" <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[-2:] = b"\x00\x3c"  # last element of the last tensor := 1.0 (F16)
open(sys.argv[2], "wb").write(data)
PY
expect_exit 0 "$I" --diff llama-4m-fp16/model.safetensors "$TMP/changed.safetensors"
expect_exit 1 "$I" --diff --values llama-4m-fp16/model.safetensors "$TMP/changed.safetensors"
expect_stdout_matches '^values: 1 tensor$'
expect_stdout_contains "1 values differ"
expect_exit 1 "$I" --diff --detail --values llama-4m-fp16/model.safetensors "$TMP/changed.safetensors"
last=$(python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; h=json.loads(f.read(n)); h.pop("__metadata__",None); print(max(h, key=lambda k: h[k]["data_offsets"][1]))' llama-4m-fp16/model.safetensors)
expect_stdout_matches "^values: $last: max_abs_diff [0-9.e-]+ cosine 0\\.9"
expect_stdout_contains "1 values differ"

# Two descriptions, directly.
cat >"$TMP/a.json" <<'J'
{"model_quant_type": "W8A8", "fa_quant_type": "FAQuant", "x.weight": "W8A8", "y.weight": "FLOAT", "z.weight": "W8A8"}
J
cat >"$TMP/b.json" <<'J'
{"model_quant_type": "W8A8_DYNAMIC", "x.weight": "FLOAT", "y.weight": "FLOAT", "w.weight": "W8A8_DYNAMIC"}
J
expect_exit 0 "$I" --diff "$TMP/a.json" "$TMP/a.json"
expect_exit 1 "$I" --diff "$TMP/a.json" "$TMP/b.json"
expect_golden inspect_diff_descriptions_summary.txt
expect_exit 1 "$I" --diff --detail "$TMP/a.json" "$TMP/b.json"
expect_golden inspect_diff_descriptions.txt
expect_exit 1 "$I" --diff --json "$TMP/a.json" "$TMP/b.json"
expect_json
expect_eq "$(json_query 'd["changed_top"]')" '[{"key": "model_quant_type", "a": "W8A8", "b": "W8A8_DYNAMIC"}, {"key": "fa_quant_type", "a": "FAQuant", "b": null}]'

# W8A8 static against W8A8_DYNAMIC (the fixture quantized both ways): the line that matters,
# model_quant_type, comes first; then the scheme change and the tensors only static has, by
# suffix and layer range. --detail lists each of them.
python3 "$ST_TESTS/cli/verify_faults.py" stats reference/calibstats_llama-4m-fp16.json "$TMP/stats.st"
expect_exit 0 "$ST_BIN/st-quant-w8a8" llama-4m-fp16 --stats "$TMP/stats.st" --anti-outlier none --act-method minmax \
  -o "$TMP/static" -q
expect_exit 0 "$ST_BIN/st-quant-w8a8" llama-4m-fp16 --dynamic -o "$TMP/dynamic" -q
expect_exit 1 "$I" --diff "$TMP/static" "$TMP/dynamic"
expect_golden inspect_diff_w8a8_dynamic.txt
[[ $(head -n 1 "$OUT_FILE") == "description: model_quant_type: W8A8 -> W8A8_DYNAMIC" ]] || fail "model_quant_type is not first"
expect_exit 1 "$I" --diff --detail "$TMP/static" "$TMP/dynamic"
(($(wc -l <"$OUT_FILE") > 100)) || fail "--detail does not list every tensor"
expect_stdout_contains "only in A: model.layers.3.mlp.down_proj.input_offset"
expect_exit 1 "$I" --diff --json "$TMP/static" "$TMP/dynamic"
expect_eq "$(json_query '[(g["kind"], g["count"]) for g in d["summary"] if g["kind"] == "type"]')" '[["type", 84]]'

# Errors: exit 2, one line.
expect_exit 2 "$I" --detail llama-4m-fp16
expect_stderr_one_line
expect_stderr_contains "--detail needs --diff"
expect_exit 2 "$I" --diff llama-4m-fp16
expect_stderr_contains "--diff needs two paths"
expect_exit 2 "$I" --diff llama-4m-fp16 /nonexistent.safetensors
expect_stderr_one_line
expect_stderr_contains "'/nonexistent.safetensors'"
expect_exit 2 "$I" --diff "$TMP/a.json" llama-4m-fp16
expect_stderr_one_line
expect_exit 2 "$I" --diff "$TMP/a.json" /nonexistent.json
expect_stderr_contains "'/nonexistent.json'"
echo '{"x.weight": "W8A8"}' >"$TMP/bad.json"
expect_exit 2 "$I" --diff "$TMP/a.json" "$TMP/bad.json"
expect_stderr_contains "model_quant_type"
expect_exit 2 "$I" --diff - -
note "ok"
