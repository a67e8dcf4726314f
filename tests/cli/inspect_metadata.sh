#!/usr/bin/env bash
# st-inspect --metadata (every weight file's __metadata__, one KEY: VALUE line each; --filter on
# keys; --json; parts and streams) and the parameter counts of the listing (total, per dtype and
# per description type), checked against the headers read independently.
source "$(dirname "$0")/lib.sh"
I=$ST_BIN/st-inspect
L=$ST_FIXTURES/llama-4m-fp16

# numel_by KEY DIR FILE...: {"total": N, KEY: {...}} of element counts from the raw headers
# (KEY "dtype", or "type" for a description's types).
numel_by() {
  python3 - "$@" <<'PY'
import json, os, struct, sys
key, d, files = sys.argv[1], sys.argv[2], sys.argv[3:]
desc = {}
if os.path.exists(os.path.join(d, "quant_model_description.json")):
    desc = json.load(open(os.path.join(d, "quant_model_description.json")))
out = {"total": 0, key: {}}
for f in files:
    raw = open(os.path.join(d, f), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    for name, t in json.loads(raw[8:8 + n]).items():
        if name == "__metadata__": continue
        k = 1
        for s in t["shape"]: k *= s
        out["total"] += k
        group = t["dtype"] if key == "dtype" else desc.get(name)
        if group: out[key][group] = out[key].get(group, 0) + k
print(json.dumps(out, sort_keys=True))
PY
}

note "parameter counts: total and per dtype on the float fixture"
expect_exit 0 "$I" "$L"
expect_stdout_matches '^parameters: [0-9]+ \([0-9.]+ M\)$'
expect_exit 0 "$I" --json "$L"
want=$(numel_by dtype "$L" model.safetensors)
got=$(json_query 'json.dumps({"total": d["summary"]["params"], "dtype": {k: v["params"] for k, v in d["summary"]["dtypes"].items()}}, sort_keys=True)')
expect_eq "$got" "$want" "parameters per dtype"

note "per description type on a W8A8S output (28 linears, 5 tensors each: msModelSlim's W8A8S) and its __metadata__"
python3 "$ST_TESTS/cli/verify_faults.py" stats "$ST_FIXTURES/reference/calibstats_llama-4m-fp16.json" "$TMP/stats.st"
expect_exit 0 "$ST_BIN/st-sparsify" "$L" --stats "$TMP/stats.st" --method wanda --ratio 0.25 -o "$TMP/s" -q
expect_exit 0 "$I" "$TMP/s"
expect_stdout_matches '^type W8A8S: 140 tensors, [0-9]+ parameters, [0-9]+ bytes$'
expect_exit 0 "$I" --json "$TMP/s"
want=$(numel_by type "$TMP/s" quant_model_weight_w8a8s.safetensors)
got=$(json_query 'json.dumps({"total": d["summary"]["params"], "type": {k: v["params"] for k, v in d["summary"]["types"].items()}}, sort_keys=True)')
expect_eq "$got" "$want" "parameters per type"

note "--metadata"
expect_exit 0 "$I" --metadata "$TMP/s" --filter 'st.[sq][pu]a*'  # st.sparsify.* and st.quant.*
expect_golden inspect_metadata_w8a8s.txt
expect_exit 0 "$I" --metadata --json "$TMP/s"
expect_json
python3 - "$OUT_FILE" "$TMP/s/quant_model_weight_w8a8s.safetensors" <<'PY' || fail "--metadata --json differs from the header"
import json, struct, sys
got = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
md = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])["__metadata__"]
assert [f["file"] for f in got["files"]] == ["quant_model_weight_w8a8s.safetensors"], got["files"]
assert got["files"][0]["metadata"] == md
PY
# Every key on one line, multi-line values as JSON strings.
expect_exit 0 "$I" --metadata "$TMP/s"
keys=$(python3 -c 'import json,struct,sys; r=open(sys.argv[1],"rb").read(); print(len(json.loads(r[8:8+struct.unpack("<Q",r[:8])[0]])["__metadata__"]))' \
  "$TMP/s/quant_model_weight_w8a8s.safetensors")
expect_eq "$(wc -l <"$OUT_FILE")" "$keys" "one line per key"
expect_stdout_contains "st.sparsify.method: wanda"
# A file without __metadata__, a stream, and a parts directory (one block per file).
python3 - "$L/model.safetensors" "$TMP/bare.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
t = json.dumps(h).encode(); t += b" " * (-(8 + len(t)) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(t)) + t + raw[8 + n:])
PY
expect_exit 0 "$I" --metadata "$TMP/bare.safetensors"
expect_eq "$(cat "$OUT_FILE")" "(no __metadata__)"
expect_exit_in "$TMP/s/quant_model_weight_w8a8s.safetensors" 0 "$I" --metadata - --filter '*method'
expect_eq "$(cat "$OUT_FILE")" "st.sparsify.method: wanda"
expect_exit 0 "$ST_BIN/st-shard" "$TMP/s" --tp 2 -o "$TMP/parts" -q
expect_exit 0 "$I" --metadata "$TMP/parts" --filter 'st.shard.[rt][ap]*'  # rank and tp
expect_golden inspect_metadata_parts.txt
expect_exit 0 "$I" --metadata "$TMP/parts" --filter 'no such key'
expect_stdout_contains "(no key matches --filter)"

note "errors"
expect_exit 2 "$I" --metadata --diff "$L" "$L"
expect_stderr_one_line
expect_stderr_contains "--metadata does not mix with --diff or --stats"
note "ok"
