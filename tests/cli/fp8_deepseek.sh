#!/usr/bin/env bash
# DeepSeek's FP8 release as input: a DeepSeek-style FP8 checkpoint made from the DeepSeek fixture
# (F8_E4M3 + 128x128 weight_scale_inv, two shards, DeepSeek's quantization_config) goes through
# every tool; quantizing it gives the bytes quantizing its bf16 cast gives; st-cast matches the
# reference formula, recomputed by an independent Python implementation.
source "$(dirname "$0")/lib.sh"
FP8PY=$ST_TESTS/cli/fp8_checkpoint.py
CALIB=$ST_FIXTURES/data/calib_ids.jsonl
EVAL=$ST_FIXTURES/data/eval_512x128.u32
python3 "$FP8PY" make "$ST_FIXTURES/deepseekv3-mla-6m-fp16" "$TMP/fp8" --shards 2 --stream "$TMP/fp8.stream"
FP8=$TMP/fp8

# st-inspect lists the FP8 weights and their scales; --stats are the dequantized values.
expect_exit 0 "$ST_BIN/st-inspect" "$FP8"
expect_stdout_matches 'model\.layers\.0\.self_attn\.q_b_proj\.weight +F8_E4M3 +\[384, 96\]'
expect_stdout_matches 'model\.layers\.0\.self_attn\.q_b_proj\.weight_scale_inv +F32 +\[3, 1\]'

# st-cast: bit for bit the reference formula, for every target; the config loses quantization_config.
for to in bf16 f16 f32; do
  expect_exit 0 "$ST_BIN/st-cast" "$FP8" --to $to -o "$TMP/cast_$to"
  expect_stderr_contains "104 FP8 weights dequantized, 104 scales dropped"
  expect_exit 0 python3 "$FP8PY" check-cast "$FP8" "$TMP/cast_$to" $to
  expect_stdout_contains "ok 129 tensors"
done
expect_exit 0 python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert "quantization_config" not in c and c["dtype"] == "float16", c' "$TMP/cast_f16/config.json"
# The check can fail: one changed byte in a cast weight is found.
cp -r "$TMP/cast_bf16" "$TMP/tampered"
python3 - "$TMP/tampered/model-00002-of-00002.safetensors" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[-3] ^= 1; open(sys.argv[1], "wb").write(b)
EOF
expect_exit 1 python3 "$FP8PY" check-cast "$FP8" "$TMP/tampered" bf16
expect_stdout_contains "bytes differ from the reference formula"
# Output policy: an existing output needs -f; a quantized input is refused; a stream holds the same tensors.
expect_exit 2 "$ST_BIN/st-cast" "$FP8" --to bf16 -o "$TMP/cast_bf16"
expect_stderr_one_line
expect_stderr_contains "output already exists (use -f to replace it)"
expect_exit 0 "$ST_BIN/st-cast" "$FP8" --to bf16 -o "$TMP/cast_bf16" -f -q
expect_exit 0 "$ST_BIN/st-cast" "$FP8" --to bf16 -o "$TMP/cast.stream" -q
expect_exit 2 "$ST_BIN/st-cast" "$FP8" --to bf16 -o "$TMP/cast.stream" -q
expect_exit 0 "$ST_BIN/st-inspect" --diff --values "$TMP/cast.stream" "$TMP/cast_bf16"
expect_exit 2 "$ST_BIN/st-cast" "$FP8" --to f8 -o "$TMP/x"
BF16=$TMP/cast_bf16

# --stats of an FP8 weight are those of its bf16 cast (the values the tools read).
stats_line() { grep -E "^$2 " <<<"$1" | awk '{for (i = 6; i <= NF; i++) printf " %s", $i}'; }  # after the bytes
expect_exit 0 "$ST_BIN/st-inspect" --stats "$FP8"
fp8_stats=$(last_stdout)
expect_exit 0 "$ST_BIN/st-inspect" --stats "$BF16"
w=model.layers.1.mlp.experts.3.down_proj.weight
[[ -n $(stats_line "$fp8_stats" $w) && $(stats_line "$fp8_stats" $w) == "$(stats_line "$(last_stdout)" $w)" ]] ||
  fail "FP8 statistics of $w differ from the cast's"

# st-verify: the pairing is checked; each fault is a problem naming the tensor (exit 1).
expect_exit 0 "$ST_BIN/st-verify" "$FP8"
expect_stdout_contains "104 FP8 weights: block scales paired, shaped and finite"
mkdir "$TMP/one"
cp "$TMP/fp8.stream" "$TMP/one/model.safetensors"
cp "$FP8"/config.json "$FP8"/generation_config.json "$FP8"/tokenizer*.json "$TMP/one/"
declare -A why=([no-scale]="weight has no '" [bad-shape]="have shape [1, 1], a [256, 768] weight in 128x128 blocks needs [2, 6]"
                [orphan]="block scales of 'model.embed_tokens.weight', which is BF16, not FP8" [nan-scale]="block scale 0 is not finite")
for fault in no-scale bad-shape orphan nan-scale; do
  tensor=$(python3 "$FP8PY" fault "$TMP/one" "$TMP/fault_$fault" $fault)
  expect_exit 1 "$ST_BIN/st-verify" "$TMP/fault_$fault"
  expect_stdout_contains "${why[$fault]}"
  [[ $fault == no-scale ]] && tensor=${tensor%_scale_inv}
  expect_stdout_contains "tensor '$tensor'"
done
# Tools that read the weights refuse a weight without its scales, naming it.
expect_exit 2 "$ST_BIN/st-cast" "$TMP/fault_no-scale" --to bf16 -o "$TMP/x"
expect_stderr_one_line
expect_stderr_contains "tensor 'model.layers.0.mlp.down_proj.weight': F8_E4M3 weight has no 'model.layers.0.mlp.down_proj.weight_scale_inv' block scales"
expect_no_file "$TMP/x"

# st-calibrate: the same statistics from the FP8 release as from its cast.
expect_exit 0 "$ST_BIN/st-calibrate" "$FP8" --data "$CALIB" --samples 8 -o "$TMP/fp8.st" -q
expect_exit 0 "$ST_BIN/st-calibrate" "$BF16" --data "$CALIB" --samples 8 -o "$TMP/bf16.st" -q
expect_exit 0 "$ST_BIN/st-inspect" --diff --values "$TMP/fp8.st" "$TMP/bf16.st"

# st-quant-w8a8 (default static recipe, and dynamic) and st-sparsify (default SparseGPT): the
# FP8 release and its bf16 cast give the same bytes; the description lists the tensors in the
# input's storage order, which differs (st-cast lays its output out in HF order), so it is
# compared as JSON.
same_quantized() {
  expect_exit 0 diff -r -x quant_model_description.json "$1" "$2"
  expect_exit 0 python3 -c 'import json,sys; a, b = (json.load(open(p + "/quant_model_description.json")) for p in sys.argv[1:]); assert a == b' "$1" "$2"
}
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$FP8" --stats "$TMP/fp8.st" -o "$TMP/q_fp8" -q
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$BF16" --stats "$TMP/fp8.st" -o "$TMP/q_bf16" -q
same_quantized "$TMP/q_fp8" "$TMP/q_bf16"
expect_exit 0 python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); assert "quantization_config" not in c and c["quantize"] == "w8a8_dynamic" and c["mla_quantize"] == "w8a8", c' "$TMP/q_fp8/config.json"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$FP8" --dynamic -o "$TMP/d_fp8" -q
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$BF16" --dynamic -o "$TMP/d_bf16" -q
same_quantized "$TMP/d_fp8" "$TMP/d_bf16"
expect_exit 0 "$ST_BIN/st-sparsify" "$FP8" --stats "$TMP/fp8.st" --data "$CALIB" --samples 8 -o "$TMP/s_fp8" -q
expect_exit 0 "$ST_BIN/st-sparsify" "$BF16" --stats "$TMP/fp8.st" --data "$CALIB" --samples 8 -o "$TMP/s_bf16" -q
same_quantized "$TMP/s_fp8" "$TMP/s_bf16"
# A one-pass stream of the FP8 release (its scales may follow their weights) gives the same bytes.
# ($TMP/one holds the stream's bytes as its model.safetensors: the same tensor order.)
cat "$TMP/fp8.stream" | expect_exit_piped 0 "$ST_BIN/st-quant-w8a8" - --dynamic -o "$TMP/d_pipe" -q
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$TMP/one" --dynamic -o "$TMP/d_one" -q
expect_same "$TMP/d_one/quant_model_weight_w8a8_dynamic.safetensors" "$TMP/d_pipe/quant_model_weight_w8a8_dynamic.safetensors"
expect_exit 0 "$ST_BIN/st-inspect" --diff --values "$TMP/d_pipe" "$TMP/d_fp8"
# st-verify --against the FP8 release: numerics against its dequantized weights.
expect_exit 0 "$ST_BIN/st-verify" "$TMP/q_fp8" --against "$FP8"
expect_exit 0 "$ST_BIN/st-verify" "$TMP/d_fp8" --against "$FP8"

# st-eval: the FP8 release runs as its cast does, and judges a quantized model.
expect_exit 0 "$ST_BIN/st-eval" "$FP8" --data "$EVAL" --samples 4
fp8_ppl=$(grep '^perplexity' "$OUT_FILE")
expect_exit 0 "$ST_BIN/st-eval" "$BF16" --data "$EVAL" --samples 4
expect_stdout_contains "$fp8_ppl"
expect_exit 0 "$ST_BIN/st-eval" "$FP8" --quant "$TMP/q_fp8" --data "$EVAL" --samples 2
expect_stdout_contains "top-1 agreement"

# st-shard keeps each weight's scales with it: a split or a packing that cuts a 128-block is
# refused; --no-pack at tp 1 round-trips; the quantized model splits as usual.
expect_exit 2 "$ST_BIN/st-shard" "$FP8" --tp 2 -o "$TMP/parts"
expect_stderr_one_line
expect_stderr_contains "tensor 'model.layers.0.self_attn.q_b_proj.weight': tensor parallelism 2 cuts dimension 0 (384) of this FP8 weight into pieces of 192, inside its 128x128 scale blocks"
expect_no_file "$TMP/parts"
expect_exit 2 "$ST_BIN/st-shard" "$FP8" --tp 1 -o "$TMP/parts"
expect_stderr_contains "FP8 member 'model.layers.1.mlp.experts.0.gate_proj.weight' has 192 rows per rank, ending inside a 128-row block of its scales"
expect_exit 0 "$ST_BIN/st-shard" "$FP8" --tp 1 --no-pack -o "$TMP/parts"
expect_exit 0 "$ST_BIN/st-verify" "$TMP/parts"
expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/parts" -o "$TMP/merged"
for f in model-00001-of-00002.safetensors model-00002-of-00002.safetensors; do expect_same "$FP8/$f" "$TMP/merged/$f"; done
expect_exit 0 "$ST_BIN/st-shard" "$TMP/q_fp8" --tp 2 -o "$TMP/qparts"
expect_exit 0 "$ST_BIN/st-verify" "$TMP/qparts"
