#!/usr/bin/env bash
# st-inspect on quantized directories (TYPE column, per-type summary, model_quant_type,
# fa_quant_type) and part{i}-of-{n} directories (listed per part); --diff of two quantized
# directories reports type and top-level description changes.
source "$(dirname "$0")/lib.sh"
I=$ST_BIN/st-inspect

# make_quant DIR MODEL_QUANT_TYPE [ROWS]: a small W8A8-shaped quantized directory.
make_quant() {
  python3 - "$@" <<'PY'
import json, os, struct, sys
out, mqt = sys.argv[1], sys.argv[2]
rows = int(sys.argv[3]) if len(sys.argv) > 3 else 4
os.makedirs(out, exist_ok=True)
p = "model.layers.0.self_attn."
tensors = [
    (p + "q_proj.weight", "I8", [rows, 8], bytes(range(rows * 8))),
    (p + "q_proj.deq_scale", "I64", [rows], bytes(8 * rows)),
    (p + "q_proj.quant_bias", "I32", [rows], bytes(4 * rows)),
    (p + "q_proj.input_scale", "F16", [1], b"\x00\x3c"),
    (p + "q_proj.input_offset", "F16", [1], b"\x00\x00"),
    (p + "fa_q.scale", "F16", [2, 1], b"\x00\x3c" * 2),
    ("model.norm.weight", "F16", [8], b"\x00\x3c" * 8),
]
desc = {"model_quant_type": mqt, "fa_quant_type": "FAQuant"}
for name, *_ in tensors:
    desc[name] = "FLOAT" if name == "model.norm.weight" else ("FAQuant" if ".fa_" in name else mqt)
header, off = {}, 0
for name, dt, shape, data in tensors:
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
    off += len(data)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(os.path.join(out, "quant_model_weight_%s.safetensors" % mqt.lower()), "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))
json.dump(desc, open(os.path.join(out, "quant_model_description.json"), "w"), indent=2)
json.dump({"model_type": "llama"}, open(os.path.join(out, "config.json"), "w"))
PY
}

make_quant "$TMP/q" W8A8
cd "$TMP"
expect_exit 0 "$I" q
expect_golden inspect_quantized.txt
expect_exit 0 "$I" --json q
expect_json
expect_eq "$(json_query '[t.get("type") for t in d["tensors"]]')" \
  '["W8A8", "W8A8", "W8A8", "W8A8", "W8A8", "FAQuant", "FLOAT"]'
expect_eq "$(json_query 'd["summary"]["types"]')" \
  '{"FAQuant": {"tensors": 1, "params": 2, "bytes": 4}, "FLOAT": {"tensors": 1, "params": 8, "bytes": 16}, "W8A8": {"tensors": 5, "params": 42, "bytes": 84}}'
expect_eq "$(json_query '(d["summary"]["model_quant_type"], d["summary"]["fa_quant_type"], d["layout"])')" \
  "('W8A8', 'FAQuant', 'quantized')"
expect_exit 0 "$I" --stats --filter '*q_proj.weight' q
expect_stdout_matches '^model.layers.0.self_attn.q_proj.weight +I8 +\[4, 8\] +32 +W8A8 +0 +31 +15.5 '

# Parts: each part listed with its own table, then a total.
make_quant "$TMP/parts/part0-of-2" W8A8 2
make_quant "$TMP/parts/part1-of-2" W8A8 2
expect_exit 0 "$I" parts
expect_golden inspect_parts.txt
expect_exit 0 "$I" --json parts
expect_json
expect_eq "$(json_query '[p["name"] for p in d["parts"]]')" '["part0-of-2", "part1-of-2"]'
expect_eq "$(json_query '(d["layout"], d["summary"]["tensors"], d["parts"][1]["tensors"][0]["shape"])')" \
  "('parts', 14, [2, 8])"

# Diff: a type change and a top-level change.
make_quant "$TMP/d" W8A8_DYNAMIC
expect_exit 1 "$I" --diff --detail q d
expect_stdout_contains "type: model.layers.0.self_attn.q_proj.weight: W8A8 -> W8A8_DYNAMIC"
expect_stdout_contains "description: model_quant_type: W8A8 -> W8A8_DYNAMIC"
expect_exit 1 "$I" --diff --detail q/quant_model_description.json d/quant_model_description.json
expect_stdout_contains "type: model.layers.0.self_attn.q_proj.weight: W8A8 -> W8A8_DYNAMIC"
expect_exit 0 "$I" --diff --detail --values parts parts
expect_stdout_contains "values: part1-of-2/model.norm.weight: identical"
# A float checkpoint against a quantized one: described types appear from nothing.
expect_exit 1 "$I" --diff "$ST_FIXTURES/llama-4m-fp16" q
expect_stdout_contains "description: model_quant_type: (absent) -> W8A8"
note "ok"
