#!/usr/bin/env bash
# st-shard refuses what it cannot do with a one-line reason, exit 2, and leaves nothing behind:
# TP degrees the heads / KV heads / sizes do not allow, existing output, output over the input,
# already-split input, inputs without a config, and tampered or incomplete part folders on merge.
source "$(dirname "$0")/lib.sh"
L=$ST_FIXTURES/llama-4m-fp16
D=$ST_FIXTURES/deepseekv3-mla-6m-fp16

refuse() {  # WHAT-IN-STDERR CMD...
  local what=$1
  shift
  expect_exit 2 "$@"
  expect_stderr_one_line
  expect_stderr_contains "$what"
  expect_stdout_empty
}

# llama-4m: 8 heads -> tp 3, 5, 16 cannot work; DeepSeek: 8 heads, moe_intermediate 192.
refuse "8 attention heads do not divide into 3 ranks" "$ST_BIN/st-shard" "$L" --tp 3 -o "$TMP/out"
expect_no_file "$TMP/out"
refuse "8 attention heads do not divide into 16 ranks" "$ST_BIN/st-shard" "$L" --tp 16 -o "$TMP/out"
refuse "8 attention heads do not divide into 5 ranks" "$ST_BIN/st-shard" "$D" --tp 5 -o "$TMP/out"
expect_no_file "$TMP/out"
[[ -z $(ls -A "$TMP" | grep -v '^\.last') ]] || fail "refusals left files behind: $(ls -A "$TMP")"

# KV heads that neither divide nor replicate, an intermediate size and a vocabulary that do not
# divide: a copy of llama-4m with an edited config.json.
mkdir "$TMP/odd"
cp "$L"/model.safetensors "$L"/tokenizer.json "$TMP/odd/"
edit_config() {  # KEY VALUE...
  python3 - "$L/config.json" "$TMP/odd/config.json" "$@" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
for k, v in zip(sys.argv[3::2], sys.argv[4::2]):
    c[k] = int(v)
json.dump(c, open(sys.argv[2], "w"))
PY
}
edit_config num_attention_heads 12 num_key_value_heads 3
refuse "3 KV heads neither divide into 4 ranks nor replicate evenly" "$ST_BIN/st-shard" "$TMP/odd" --tp 4 -o "$TMP/out"
edit_config intermediate_size 690
refuse "intermediate_size 690 does not divide into 4 ranks" "$ST_BIN/st-shard" "$TMP/odd" --tp 4 -o "$TMP/out"
edit_config vocab_size 8190
refuse "vocab_size 8190 does not divide into 4 ranks" "$ST_BIN/st-shard" "$TMP/odd" --tp 4 -o "$TMP/out"
# A config that lies about the heads is caught by the tensor's own shape.
edit_config num_key_value_heads 8
refuse "model.layers.0.self_attn.k_proj.weight" "$ST_BIN/st-shard" "$TMP/odd" --tp 8 -o "$TMP/out"
expect_no_file "$TMP/out"
rm "$TMP/odd/config.json"
refuse "no config.json" "$ST_BIN/st-shard" "$TMP/odd" --tp 2 -o "$TMP/out"
# A bare stream has no config either.
cat "$L/model.safetensors" | expect_exit_piped 2 "$ST_BIN/st-shard" - --tp 2 -o "$TMP/out"
expect_stderr_contains "no config.json"
expect_no_file "$TMP/out"

# Usage.
refuse "--tp N is required" "$ST_BIN/st-shard" "$L" -o "$TMP/out"
refuse "-o PATH is required" "$ST_BIN/st-shard" "$L" --tp 2
refuse "--merge takes only" "$ST_BIN/st-shard" "$L" --merge "$TMP/x" -o "$TMP/out"

# Existing output, output over the input, already-split input.
expect_exit 0 "$ST_BIN/st-shard" -q "$L" --tp 2 -o "$TMP/parts"
cp -r "$TMP/parts" "$TMP/parts.orig"
refuse "output already exists (use -f to replace it)" "$ST_BIN/st-shard" "$L" --tp 4 -o "$TMP/parts"
expect_no_file "$TMP/parts/part3-of-4"
refuse "the output is the input" "$ST_BIN/st-shard" "$L" --tp 2 -o "$L" -f
refuse "the output contains the input" "$ST_BIN/st-shard" "$L" --tp 2 -o "$ST_FIXTURES" -f
expect_file "$L/model.safetensors"
refuse "already split into part folders" "$ST_BIN/st-shard" "$TMP/parts" --tp 2 -o "$TMP/out"
refuse "not a directory of part{r}-of-{N} folders" "$ST_BIN/st-shard" --merge "$L" -o "$TMP/out"
refuse "merge it to a directory, not '-'" "$ST_BIN/st-shard" --merge "$TMP/parts" -o -
expect_exit 0 "$ST_BIN/st-shard" -q "$L" --tp 4 -o "$TMP/parts" -f
expect_file "$TMP/parts/part3-of-4/model.safetensors"

# Merge refuses tampered parts: a replicated norm that differs between ranks (one byte).
python3 - "$TMP/parts.orig/part1-of-2/model.safetensors" <<'PY'
import json, struct, sys
p = sys.argv[1]
f = open(p, "r+b")
n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n))
f.seek(8 + n + h["model.norm.weight"]["data_offsets"][0])
b = f.read(1)
f.seek(-1, 1)
f.write(bytes([b[0] ^ 0x40]))
PY
refuse "model.norm.weight" "$ST_BIN/st-shard" --merge "$TMP/parts.orig" -o "$TMP/merged"
expect_stderr_contains "replicated tensor differs from part0-of-2"
expect_no_file "$TMP/merged"
# A missing part folder, and parts of two different splits.
rm -r "$TMP/parts.orig/part1-of-2"
refuse "part1-of-2': part folder missing (1 of 2 present)" "$ST_BIN/st-shard" --merge "$TMP/parts.orig" -o "$TMP/merged"
cp -r "$TMP/parts/part1-of-4" "$TMP/parts.orig/part1-of-2"
refuse "part says tp 4 but 2 parts are present" "$ST_BIN/st-shard" --merge "$TMP/parts.orig" -o "$TMP/merged"
expect_no_file "$TMP/merged"
