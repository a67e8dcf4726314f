#!/usr/bin/env bash
# st-shard on the float fixtures: parts follow the split rules (checked by an independent Python
# statement of them), and --merge gives back every file byte for byte (TP 2/4/8 where heads allow).
# ctest: slow
source "$(dirname "$0")/lib.sh"
CHECK="python3 $ST_TESTS/cli/shard_tool.py check"

roundtrip() {  # MODEL TP [extra st-shard flags...]
  local model=$1 tp=$2
  shift 2
  local name parts merged
  name=$(basename "$model")-tp$tp${1:-}
  parts=$TMP/$name.parts
  merged=$TMP/$name.merged
  expect_exit 0 "$ST_BIN/st-shard" "$model" --tp "$tp" -o "$parts" "$@"
  expect_stdout_empty
  expect_stderr_contains "wrote $tp parts"
  for ((r = 0; r < tp; r++)); do
    expect_file "$parts/part$r-of-$tp/model.safetensors"
    expect_no_file "$parts/part$r-of-$tp/model.safetensors.index.json"
    expect_file "$parts/part$r-of-$tp/config.json"
    expect_file "$parts/part$r-of-$tp/tokenizer.json"
    expect_no_file "$parts/part$r-of-$tp/quant_model_description.json"
  done
  expect_no_file "$parts/part$tp-of-$tp"
  run_cmd $CHECK "$model" "$parts" "$tp" "$@"
  [[ $LAST_RC == 0 ]] || fail "parts of $name do not follow the rules"
  expect_exit 0 "$ST_BIN/st-shard" --merge "$parts" -o "$merged"
  expect_stderr_contains "merged $tp parts"
  for f in "$model"/*; do expect_same "$f" "$merged/$(basename "$f")"; done
  [[ $(ls "$merged" | wc -l) == $(ls "$model" | wc -l) ]] || fail "merged $name has extra files: $(ls "$merged")"
  note "$name: parts follow the rules, merge is byte-identical"
}

L=$ST_FIXTURES/llama-4m-fp16
D=$ST_FIXTURES/deepseekv3-mla-6m-fp16
roundtrip "$L" 2
roundtrip "$L" 4
roundtrip "$L" 8   # 4 KV heads over 8 ranks: each rank holds the KV head its queries use
roundtrip "$L" 4 --no-pack
roundtrip "$L" 2 --replicate-embeddings
roundtrip "$ST_FIXTURES/llama-4m-bf16" 2
roundtrip "$D" 2
roundtrip "$D" 4
# A sharded HF checkpoint (3 files + index): parts hold one file each; merge restores all 4 files.
expect_exit 0 python3 "$ST_TESTS/cli/shard_tool.py" split-hf "$L" "$TMP/llama-sharded" 3
expect_file "$TMP/llama-sharded/model-00003-of-00003.safetensors"
roundtrip "$TMP/llama-sharded" 2

# --dry-run: the plan, nothing written.
expect_exit 0 "$ST_BIN/st-shard" "$L" --tp 8 --dry-run
expect_stdout_matches '^model\.layers\.0\.self_attn\.k_proj\.weight +split dim 0 /4 +model\.layers\.0\.self_attn\.query_key_value\.weight@32 +\[96,256\]$'
expect_stdout_matches '^model\.layers\.0\.self_attn\.o_proj\.weight +split dim 1 /8 '
expect_stdout_lines 41

# Packed names and per-rank shapes, as st-inspect sees them (llama-4m: 8 heads x 32, 4 KV heads, ffn 688).
P=$TMP/llama-4m-fp16-tp4.parts/part3-of-4
expect_exit 0 "$ST_BIN/st-inspect" "$P" --json
expect_eq "$(json_query '[t["shape"] for t in d["tensors"] if t["name"]=="model.layers.0.self_attn.query_key_value.weight"][0]')" "[128, 256]" "qkv shape"
expect_eq "$(json_query '[t["shape"] for t in d["tensors"] if t["name"]=="model.layers.0.mlp.gate_up_proj.weight"][0]')" "[344, 256]" "gate_up shape"
expect_eq "$(json_query '[t["shape"] for t in d["tensors"] if t["name"]=="model.layers.0.mlp.down_proj.weight"][0]')" "[256, 172]" "down shape"
expect_eq "$(json_query '[t["shape"] for t in d["tensors"] if t["name"]=="lm_head.weight"][0]')" "[2048, 256]" "lm_head shape"
expect_eq "$(json_query 'sum(1 for t in d["tensors"] if t["name"].endswith("q_proj.weight"))')" "0" "unpacked q_proj left"
# DeepSeek MLA: q_a/kv_a replicated, q_b/kv_b by heads, experts like dense.
P=$TMP/deepseekv3-mla-6m-fp16-tp4.parts/part1-of-4
expect_exit 0 "$ST_BIN/st-inspect" "$P" --json
for pair in "self_attn.q_a_proj.weight:[96, 256]" "self_attn.kv_a_proj_with_mqa.weight:[80, 256]" \
  "self_attn.q_b_proj.weight:[96, 96]" "self_attn.kv_b_proj.weight:[128, 64]" "self_attn.o_proj.weight:[256, 64]" \
  "mlp.experts.7.gate_up_proj.weight:[96, 256]" "mlp.experts.7.down_proj.weight:[256, 48]" "mlp.gate.weight:[8, 256]"; do
  t=model.layers.1.${pair%%:*}
  expect_eq "$(json_query "[t['shape'] for t in d['tensors'] if t['name']=='$t'][0]")" "${pair#*:}" "$t"
done
