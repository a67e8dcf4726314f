#!/usr/bin/env bash
# Tensor alignment: st-tools writes every tensor at a multiple of its element size (HF's layout),
# to a directory and to a stream alike; st-verify notes a file from elsewhere that is not aligned
# (valid safetensors, only slower to map) without calling it a problem.
source "$(dirname "$0")/lib.sh"
B=$ST_BIN
python3 "$ST_TESTS/cli/tiny_model.py" "$TMP/m" --bias --model-type qwen2 --stats "$TMP/s.st"
expect_exit 0 "$B/st-quant-w8a8" "$TMP/m" --stats "$TMP/s.st" -o "$TMP/q" -q
expect_exit 0 "$B/st-verify" "$TMP/q"
expect_stdout_not_contains "not aligned"
run_cmd "$B/st-quant-w8a8" "$TMP/m" --stats "$TMP/s.st" -o - -q </dev/null
[[ $LAST_RC == 0 ]] || fail "stream: exit $LAST_RC"
cp "$OUT_FILE" "$TMP/stream.safetensors"
expect_exit 0 "$B/st-verify" "$TMP/stream.safetensors"
expect_stdout_not_contains "not aligned"

# The same weights laid out in name order, as an older writer did: still ok, with a note.
python3 - "$TMP/q/quant_model_weight_w8a8.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
raw = open(p, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
md = h.pop("__metadata__", {})
md.pop("st.xxh3", None)
out, data, pos = {"__metadata__": md}, b"", 0
for k in sorted(h):
    b, e = h[k]["data_offsets"]
    out[k] = dict(h[k], data_offsets=[pos, pos + e - b])
    pos += e - b
    data += raw[8 + n + b:8 + n + e]
t = json.dumps(out).encode()
t += b" " * (-len(t) % 8)
open(p, "wb").write(struct.pack("<Q", len(t)) + t + data)
PY
rm "$TMP/q/quant_model_weight_w8a8.safetensors.xxh3"
expect_exit 0 "$B/st-verify" "$TMP/q"
expect_stdout_matches "^note: '.*quant_model_weight_w8a8.safetensors': [0-9]+ tensors not aligned to their element size"
