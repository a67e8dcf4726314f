#!/usr/bin/env bash
# st-inspect --stats: values checked against an independent Python computation over the
# fixture's F16/BF16 data; identical for any thread count; the same from a pipe; --json.
source "$(dirname "$0")/lib.sh"
cd "$ST_FIXTURES"
I=$ST_BIN/st-inspect

expect_exit 0 "$I" --stats --json --filter '*layers.1.*' llama-4m-fp16
expect_json
cp "$OUT_FILE" "$TMP/stats.json"
python3 - "$TMP/stats.json" llama-4m-fp16/model.safetensors <<'PY' || fail "--stats disagrees with Python"
import json, math, struct, sys
doc = json.load(open(sys.argv[1]))
with open(sys.argv[2], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    start = 8 + n
    assert len(doc["tensors"]) == 9, len(doc["tensors"])
    for t in doc["tensors"]:
        e = header[t["name"]]
        b, end = e["data_offsets"]
        f.seek(start + b)
        raw = f.read(end - b)
        x = struct.unpack("<%de" % (len(raw) // 2), raw)
        finite = [v for v in x if math.isfinite(v)]
        mean = math.fsum(finite) / len(finite)
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / len(finite))
        s = t["stats"]
        def close(a, b, tol=1e-9):
            return abs(a - b) <= tol * max(1.0, abs(b))
        assert s["min"] == min(finite) and s["max"] == max(finite), t["name"]
        assert s["absmax"] == max(abs(v) for v in finite), t["name"]
        assert close(s["mean"], mean) and close(s["std"], std), (t["name"], s, mean, std)
        assert s["zero_fraction"] == sum(1 for v in x if v == 0) / len(x), t["name"]
        assert s["nan"] == 0 and s["inf"] == 0 and isinstance(s["nan"], int)
PY

# Thread count does not change a single digit.
"$I" --stats -j 1 llama-4m-bf16 >"$TMP/j1.txt"
"$I" --stats -j 4 llama-4m-bf16 >"$TMP/j4.txt"
expect_same "$TMP/j1.txt" "$TMP/j4.txt"
expect_exit 0 "$I" --stats --filter '*norm*' llama-4m-bf16
expect_golden inspect_stats_norm_bf16.txt

# Streamed from a pipe: the same numbers as from the file.
"$I" --stats --json llama-4m-bf16/model.safetensors | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["tensors"]))' >"$TMP/file.json"
cat llama-4m-bf16/model.safetensors | expect_exit_piped 0 "$I" --stats --json -
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["tensors"]))' "$OUT_FILE" >"$TMP/pipe.json"
expect_same "$TMP/file.json" "$TMP/pipe.json"

# NaN, Inf and integer tensors, made here.
python3 - "$TMP/odd.safetensors" <<'PY'
import json, struct, sys
tensors = [("f32", "F32", [5], struct.pack("<5f", 1.0, float("nan"), float("inf"), 0.0, -3.0)),
           ("i32", "I32", [3], struct.pack("<3i", -7, 0, 5)),
           ("c64", "C64", [1], b"\0" * 8),
           ("empty", "F16", [0], b"")]
header, off = {}, 0
for name, dt, shape, data in tensors:
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
    off += len(data)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors))
PY
expect_exit 0 "$I" --stats --json "$TMP/odd.safetensors"
expect_json
expect_eq "$(json_query '[t["stats"] for t in d["tensors"] if t["name"]=="f32"][0]')" \
  '{"min": -3.0, "max": 1.0, "mean": -0.6666666666666666, "std": 1.699673171197595, "absmax": 3.0, "zero_fraction": 0.2, "nan": 1, "inf": 1}' "F32 stats"
expect_eq "$(json_query '[t["stats"]["min"] for t in d["tensors"] if t["name"]=="i32"][0]')" "-7.0" "I32 min"
expect_eq "$(json_query '[t["stats"] for t in d["tensors"] if t["name"]=="c64"][0]')" "None" "C64 has no stats"
expect_eq "$(json_query '[t["stats"]["mean"] for t in d["tensors"] if t["name"]=="empty"][0]')" "None" "empty mean"
expect_exit 0 "$I" --stats "$TMP/odd.safetensors"
expect_stdout_matches '^c64 +C64 +\[1\] +8 +- +- '
expect_stdout_matches '^f32 +F32 +\[5\] +20 +-3 +1 .* 0\.2 +1 +1$'
expect_stdout_matches '^empty +F16 +\[0\] +0 +nan '
note "ok"
