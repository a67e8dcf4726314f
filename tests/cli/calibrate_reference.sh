#!/usr/bin/env bash
# st-calibrate on the 64 calibration sequences matches HF transformers' per-linear input min,
# max and per-channel absmax (reference/calibstats_*.json) within 1e-3 relative, and the stats
# file holds the documented tensors (st-calibrate(1)).
# ctest: slow
source "$(dirname "$0")/lib.sh"
DATA=$ST_FIXTURES/data/calib_ids.jsonl
CMP=$ST_TESTS/cli/calibrate_compare.py

for m in llama-4m-fp16 deepseekv3-mla-6m-fp16; do
  expect_exit 0 "$ST_BIN/st-calibrate" "$ST_FIXTURES/$m" --data "$DATA" -q -o "$TMP/$m.st"
  expect_file "$TMP/$m.st"
  python3 "$CMP" "$TMP/$m.st" "$ST_FIXTURES/reference/calibstats_$m.json" 1e-3 >"$TMP/cmp.txt" ||
    fail "$m: $(cat "$TMP/cmp.txt")"
  note "$m: $(cat "$TMP/cmp.txt")"
done

# Layout: llama attention per-head absmax, token counts, sumsq, metadata.
expect_exit 0 "$ST_BIN/st-inspect" --json "$TMP/llama-4m-fp16.st"
expect_json
shape() { json_query "[t['shape'] for t in d['tensors'] if t['name']=='$1'][0]"; }
dtype() { json_query "[t['dtype'] for t in d['tensors'] if t['name']=='$1'][0]"; }
A=model.layers.0.self_attn
expect_eq "$(shape $A.q_absmax)" "[8]" "q_absmax shape"
expect_eq "$(shape $A.k_absmax)" "[4]" "k_absmax shape"
expect_eq "$(shape $A.v_absmax)" "[4]" "v_absmax shape"
expect_eq "$(shape model.layers.3.mlp.down_proj.input_sumsq)" "[688]" "sumsq shape"
expect_eq "$(dtype model.layers.3.mlp.down_proj.input_sumsq)" "F64" "sumsq dtype"
expect_eq "$(dtype model.layers.0.self_attn.q_proj.tokens)" "I64" "tokens dtype"
python3 - "$TMP/llama-4m-fp16.st" <<'PY' || fail "stats file content"
import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); buf = f.read()
def get(name, fmt):
    b, e = h[name]["data_offsets"]; return struct.unpack("<%d%s" % ((e - b) // struct.calcsize(fmt), fmt), buf[b:e])
assert get("model.layers.0.self_attn.q_proj.tokens", "q") == (32768,), "tokens = 64 x 512"
m = h["__metadata__"]; assert m["st.stats.samples"] == "64" and m["st.stats.seq_len"] == "512", m
amax = get("model.layers.1.mlp.up_proj.input_absmax", "f"); ss = get("model.layers.1.mlp.up_proj.input_sumsq", "d")
assert all(s <= a * a * 32768 * (1 + 1e-6) and s > 0 for a, s in zip(amax, ss)), "sumsq bounded by absmax^2 * tokens"
assert all(v > 0 for v in get("model.layers.0.self_attn.k_absmax", "f"))
PY

# MLA: absorbed q per head [heads] and the KV latent [1].
expect_exit 0 "$ST_BIN/st-inspect" --json "$TMP/deepseekv3-mla-6m-fp16.st"
expect_eq "$(shape $A.q_absmax)" "[8]" "MLA q_absmax shape"
expect_eq "$(shape $A.kv_absmax)" "[1]" "MLA kv_absmax shape"
# experts' linears are recorded too
expect_eq "$(shape model.layers.1.mlp.experts.0.down_proj.input_absmax)" "[192]" "expert down_proj absmax"
