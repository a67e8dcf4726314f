#!/usr/bin/env bash
# st-inspect PATH: the table and summary, --filter, --json (checked against the file's own
# header as Python reads it), and usage errors.
source "$(dirname "$0")/lib.sh"
cd "$ST_FIXTURES"
I=$ST_BIN/st-inspect

# Table + summary, exact text.
expect_exit 0 "$I" llama-4m-fp16
expect_stderr_empty
expect_golden inspect_llama_fp16.txt
expect_exit 0 "$I" deepseekv3-mla-6m-fp16
expect_golden inspect_deepseek.txt
# The same listing from the bare file, except the layout line.
expect_exit 0 "$I" llama-4m-fp16/model.safetensors
grep -v '^layout:' "$OUT_FILE" >"$TMP/file.txt"
grep -v '^layout:' "$ST_TESTS/cli/golden/inspect_llama_fp16.txt" >"$TMP/dir.txt"
expect_same "$TMP/file.txt" "$TMP/dir.txt"
expect_stdout_contains "layout: file (1 file)"

# --filter: a glob on whole names (as --float and --scheme); summary covers what matched.
expect_exit 0 "$I" --filter '*layers.2.self_attn.[qk]_proj*' llama-4m-bf16
expect_golden inspect_filter_bf16.txt
expect_exit 0 "$I" --filter 'no-such-tensor' llama-4m-fp16
expect_stdout_contains "tensors: 0, 0 bytes"

# --json: one valid document; every tensor with the header's dtype, shape and bytes.
expect_exit 0 "$I" --json llama-4m-fp16
expect_json
expect_golden inspect_llama_fp16.json
python3 - "$OUT_FILE" llama-4m-fp16/model.safetensors <<'PY' || fail "--json disagrees with the file header"
import json, struct, sys
doc = json.load(open(sys.argv[1]))
with open(sys.argv[2], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
header.pop("__metadata__", None)
got = {t["name"]: t for t in doc["tensors"]}
assert set(got) == set(header), "tensor sets differ"
for name, e in header.items():
    t = got[name]
    assert t["dtype"] == e["dtype"] and t["shape"] == e["shape"], name
    assert t["bytes"] == e["data_offsets"][1] - e["data_offsets"][0], name
    assert isinstance(t["bytes"], int)
s = doc["summary"]
assert s["tensors"] == len(header) and s["bytes"] == sum(t["bytes"] for t in doc["tensors"])
numel = sum(__import__("math").prod(e["shape"]) for e in header.values())
assert s["params"] == numel
assert s["dtypes"] == {"F16": {"tensors": len(header), "params": numel, "bytes": s["bytes"]}}
assert s["layout"] == "hf" and s["model_quant_type"] is None
assert list(doc) == ["path", "layout", "files", "tensors", "summary"]
PY
# Deterministic: the same bytes every run.
"$I" --json llama-4m-fp16 >"$TMP/again.json"
expect_same "$OUT_FILE" "$TMP/again.json"

# Headers only: a 100 GB checkpoint (a sparse file here) lists at once.
python3 - "$TMP/huge.safetensors" <<'PY'
import json, struct, sys
n = 50 * 1024**3  # F16 elements: 100 GiB of data
h = {"w%d" % i: {"dtype": "F16", "shape": [n // 4, 1], "data_offsets": [i * n // 2, (i + 1) * n // 2]} for i in range(4)}
text = json.dumps(h).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    f.truncate(8 + len(text) + 2 * n)
PY
start=$(date +%s%N)
expect_exit 0 "$I" "$TMP/huge.safetensors"
ms=$((($(date +%s%N) - start) / 1000000))
((ms < 5000)) || fail "listing a sparse 100 GiB file took $ms ms"
expect_stdout_contains "tensors: 4, 107374182400 bytes (100.0 GiB)"
rm "$TMP/huge.safetensors"

# Usage errors: exit 2, one line, nothing on stdout.
expect_exit 2 "$I"
expect_stdout_empty
expect_exit 2 "$I" llama-4m-fp16 llama-4m-bf16
expect_stderr_contains "two only with --diff"
# A glob matches the whole name: a bare word is no substring search.
expect_exit 0 "$I" --filter 'q_proj' llama-4m-fp16
expect_stdout_contains "tensors: 0, 0 bytes"
expect_exit 2 "$I" --values llama-4m-fp16
expect_stderr_contains "--values needs --diff"
expect_exit 2 "$I" /nonexistent/model
expect_stderr_one_line
expect_stderr_contains "'/nonexistent/model'"
expect_exit 2 "$I" "$ST_FIXTURES/data"
expect_stderr_contains "no checkpoint here"
expect_exit 0 "$I" --help
expect_stdout_contains "--stats"

# A reader that stops early: no error chatter.
set +o pipefail
"$I" llama-4m-fp16 2>"$TMP/pipe.err" | head -n 1 >/dev/null
set -o pipefail
[[ ! -s $TMP/pipe.err ]] || fail "closed pipe printed: $(cat "$TMP/pipe.err")"
note "ok"
