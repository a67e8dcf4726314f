#!/usr/bin/env bash
# st-inspect --json on a 3-shard HF checkpoint (made here with make_sharded.py) lists every
# tensor of the original with the right dtype and shape; an inconsistent index is refused.
source "$(dirname "$0")/lib.sh"
I=$ST_BIN/st-inspect
for model in llama-4m-fp16 deepseekv3-mla-6m-fp16; do
  src=$ST_FIXTURES/$model/model.safetensors
  python3 "$ST_TESTS/cli/make_sharded.py" "$src" "$TMP/$model" 3
  expect_exit 0 "$I" --json "$TMP/$model"
  expect_json
  python3 - "$OUT_FILE" "$src" "$TMP/$model" <<'PY' || fail "$model: sharded listing is wrong"
import json, struct, sys
doc = json.load(open(sys.argv[1]))
with open(sys.argv[2], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
header.pop("__metadata__", None)
assert doc["layout"] == "hf-sharded", doc["layout"]
assert doc["files"] == ["%s/model-%05d-of-00003.safetensors" % (sys.argv[3], i) for i in (1, 2, 3)], doc["files"]
got = {t["name"]: (t["dtype"], t["shape"], t["bytes"]) for t in doc["tensors"]}
assert len(got) == len(doc["tensors"]) == len(header)
for name, e in header.items():
    b, end = e["data_offsets"]
    assert got[name] == (e["dtype"], e["shape"], end - b), name
assert doc["summary"]["tensors"] == len(header)
PY
  # Same tensors and bytes as the unsharded model.
  expect_exit 0 "$I" --diff --values "$TMP/$model" "$ST_FIXTURES/$model"
  expect_stdout_contains "equal"
done
expect_exit 0 "$I" "$TMP/llama-4m-fp16"
expect_stdout_contains "layout: hf-sharded (3 files)"

# The index names a shard that does not hold the tensor: refused, naming the index.
python3 - "$TMP/llama-4m-fp16/model.safetensors.index.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["weight_map"]["lm_head.weight"] = "model-00003-of-00003.safetensors"
json.dump(j, open(sys.argv[1], "w"))
PY
expect_exit 2 "$I" --json "$TMP/llama-4m-fp16"
expect_stderr_one_line
expect_stderr_contains "model.safetensors.index.json'"
expect_stderr_contains "lm_head.weight"
expect_stdout_empty
rm "$TMP/llama-4m-fp16/model-00002-of-00003.safetensors"
expect_exit 2 "$I" "$TMP/llama-4m-fp16"
expect_stderr_contains "model-00002-of-00003.safetensors'"
note "ok"
