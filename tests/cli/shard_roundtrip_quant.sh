#!/usr/bin/env bash
# st-shard on st-quant-w8a8 outputs (W8A8_DYNAMIC, and static W8A8 from made-up statistics):
# parts follow the rules (rank-0 quant_bias, replicated deq_scale, packed q/k/v with one shared
# input_scale), each part is a typed quantized directory, st-verify accepts the part folders, and --merge restores every file byte for
# byte: weights, quant_model_description.json, FILE.xxh3. Streams in and out too.
# ctest: slow
source "$(dirname "$0")/lib.sh"
CHECK="python3 $ST_TESTS/cli/shard_tool.py"
L=$ST_FIXTURES/llama-4m-fp16
D=$ST_FIXTURES/deepseekv3-mla-6m-fp16
[[ -x $ST_BIN/st-quant-w8a8 ]] || fail "needs $ST_BIN/st-quant-w8a8"

roundtrip() {  # QDIR TP [flags]
  local q=$1 tp=$2
  shift 2
  local parts=$TMP/$(basename "$q")-tp$tp${1:-}.parts merged=$TMP/$(basename "$q")-tp$tp${1:-}.merged
  local wf
  wf=$(cd "$q" && ls quant_model_weight_*.safetensors)
  expect_exit 0 "$ST_BIN/st-shard" "$q" --tp "$tp" -o "$parts" "$@"
  for ((r = 0; r < tp; r++)); do
    expect_file "$parts/part$r-of-$tp/$wf"
    expect_file "$parts/part$r-of-$tp/quant_model_description.json"
    expect_file "$parts/part$r-of-$tp/config.json"
    # Every part tensor is typed, packed names included.
    expect_exit 0 "$ST_BIN/st-inspect" "$parts/part$r-of-$tp" --json
    expect_eq "$(json_query 'sum(1 for t in d["tensors"] if "type" not in t)')" "0" "untyped tensors in part $r"
  done
  expect_exit 0 "$ST_BIN/st-verify" "$parts"
  run_cmd $CHECK check "$q" "$parts" "$tp" "$@"
  [[ $LAST_RC == 0 ]] || fail "parts of $(basename "$q") tp $tp do not follow the rules"
  expect_exit 0 "$ST_BIN/st-shard" --merge "$parts" -o "$merged"
  for f in "$q"/*; do expect_same "$f" "$merged/$(basename "$f")"; done
  [[ $(ls "$merged" | wc -l) == $(ls "$q" | wc -l) ]] || fail "merged dir has extra files: $(ls "$merged")"
  note "$(basename "$q") tp $tp $*: parts follow the rules, merge is byte-identical"
}

expect_exit 0 "$ST_BIN/st-quant-w8a8" "$L" --dynamic -q -j 2 -o "$TMP/llama-dyn"
roundtrip "$TMP/llama-dyn" 2
roundtrip "$TMP/llama-dyn" 4
# Weights split over numbered files with an index: parts hold one file, merge restores them all.
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$L" --dynamic --max-file-size 4M -q -j 2 -o "$TMP/llama-dyn-split"
expect_exit 0 "$ST_BIN/st-shard" "$TMP/llama-dyn-split" --tp 2 -o "$TMP/split.parts"
expect_file "$TMP/split.parts/part1-of-2/quant_model_weight_w8a8_dynamic.safetensors"
expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/split.parts" -o "$TMP/split.merged"
for f in "$TMP/llama-dyn-split"/*; do expect_same "$f" "$TMP/split.merged/$(basename "$f")"; done
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$D" --dynamic -q -j 2 -o "$TMP/ds-dyn"
roundtrip "$TMP/ds-dyn" 2
roundtrip "$TMP/ds-dyn" 4

expect_exit 0 python3 "$ST_TESTS/cli/shard_tool.py" fake-stats "$L" "$TMP/llama.stats"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$L" --stats "$TMP/llama.stats" -q -j 2 -o "$TMP/llama-w8a8"
roundtrip "$TMP/llama-w8a8" 2
roundtrip "$TMP/llama-w8a8" 4
roundtrip "$TMP/llama-w8a8" 2 --no-pack

# The packed static linear: one input_scale for q/k/v, quant_bias of o_proj only on rank 0.
P=$TMP/llama-w8a8-tp2.parts
expect_exit 0 "$ST_BIN/st-inspect" "$P/part1-of-2" --json
expect_eq "$(json_query '[t["shape"] for t in d["tensors"] if t["name"]=="model.layers.0.self_attn.query_key_value.input_scale"][0]')" "[1]" "shared input_scale"
expect_eq "$(json_query '[t["type"] for t in d["tensors"] if t["name"]=="model.layers.0.self_attn.query_key_value.deq_scale"][0]')" "W8A8" "packed type"
expect_eq "$(json_query '[t["shape"] for t in d["tensors"] if t["name"]=="model.layers.0.self_attn.query_key_value.deq_scale"][0]')" "[256]" "packed deq_scale"
expect_exit 0 "$ST_BIN/st-inspect" "$P/part1-of-2" --stats --filter '*layers.0.self_attn.o_proj.quant_bias' --json
expect_eq "$(json_query 'd["tensors"][0]["stats"]["zero_fraction"]')" "1.0" "rank 1 o_proj.quant_bias all zero"
expect_exit 0 "$ST_BIN/st-inspect" "$P/part0-of-2" --stats --filter '*layers.0.self_attn.o_proj.quant_bias' --json
expect_eq "$(json_query 'd["tensors"][0]["stats"]["zero_fraction"] < 0.5')" "True" "rank 0 o_proj.quant_bias kept"

# A stream through st-shard and back out as a stream, byte for byte.
"$ST_BIN/st-quant-w8a8" "$L" --dynamic -q -j 2 -o - >"$TMP/dyn.stream" || fail "st-quant-w8a8 -o - failed"
cat "$TMP/dyn.stream" | expect_exit_piped 0 "$ST_BIN/st-shard" - --tp 2 -o "$TMP/stream.parts"
expect_file "$TMP/stream.parts/part1-of-2/quant_model_description.json"
expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/stream.parts" -o - -q
expect_same "$OUT_FILE" "$TMP/dyn.stream"
