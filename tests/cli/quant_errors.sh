#!/usr/bin/env bash
# st-quant-w8a8 bad input: one-line error naming the file/tensor, exit 2, nothing left at OUT.
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
TINY="python3 $ST_TESTS/cli/tiny_model.py"
REF=$ST_FIXTURES/reference
python3 "$ST_TESTS/cli/stats_from_reference.py" "$REF/calibstats_llama-4m-fp16.json" "$TMP/llama.st"

# Usage: neither --stats nor --dynamic (nor rules); static accuracy flags with only dynamic linears.
expect_exit 2 "$Q" "$ST_FIXTURES/llama-4m-fp16" -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "give --stats STATS (static W8A8) or --dynamic"
expect_exit 2 "$Q" "$ST_FIXTURES/llama-4m-fp16" --dynamic --stats "$TMP/llama.st" --act-method mse -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "--anti-outlier, --act-method and --fallback are for static W8A8 (--stats)"
expect_no_file "$TMP/o"

# Missing statistics for a linear: named (llama statistics for the DeepSeek model).
expect_exit 2 "$Q" "$ST_FIXTURES/deepseekv3-mla-6m-fp16" --stats "$TMP/llama.st" -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "tensor 'model.layers.0.self_attn.q_a_proj': no statistics for this linear"
expect_no_file "$TMP/o"

# NaN in a statistic, NaN in a weight: named.
$TINY "$TMP/tiny" --stats "$TMP/nan.st" --stats-nan model.layers.0.mlp.down_proj
expect_exit 2 "$Q" "$TMP/tiny" --stats "$TMP/nan.st" -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "'$TMP/nan.st': tensor 'model.layers.0.mlp.down_proj.input_max': statistics hold NaN or Inf"
$TINY "$TMP/nanw" --nan model.layers.0.self_attn.v_proj.weight
expect_exit 2 "$Q" "$TMP/nanw" --dynamic -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "tensor 'model.layers.0.self_attn.v_proj.weight': NaN weight at [4, 0]"
expect_no_file "$TMP/o"
expect_eq "$(ls -A "$TMP" | grep -c '^\.o\.' || true)" 0 "temporaries left"

# Unsupported architecture: names the supported ones.
$TINY "$TMP/gpt2" --model-type gpt2
expect_exit 2 "$Q" "$TMP/gpt2" --dynamic -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "unsupported model_type 'gpt2' (supported: llama, mistral, qwen2, qwen3, qwen3_moe, mixtral, glm, glm4, chatglm, baichuan, deepseek_v2, deepseek_v3)"

# A linear that is not 2-D.
$TINY "$TMP/3d" --shape model.layers.0.mlp.up_proj.weight=24,4,4
expect_exit 2 "$Q" "$TMP/3d" --dynamic -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "tensor 'model.layers.0.mlp.up_proj.weight': expected a 2-D linear weight, got 3-D"
expect_no_file "$TMP/o"

# Existing output: refused without -f, replaced with it.
expect_exit 0 "$Q" "$TMP/tiny" --dynamic -o "$TMP/out" -q
expect_exit 2 "$Q" "$TMP/tiny" --dynamic -o "$TMP/out"
expect_stderr_one_line
expect_stderr_contains "$TMP/out"
expect_exit 0 "$Q" "$TMP/tiny" --stats "$TMP/llama.st" --float '*' -o "$TMP/out" -f -q
expect_eq "$(json_query 'd["model_quant_type"]' "$TMP/out/quant_model_description.json")" W8A8 replaced

# Already quantized input; output == input (the input stays untouched).
expect_exit 2 "$Q" "$TMP/out" --dynamic -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "already quantized"
cp "$TMP/tiny/model.safetensors" "$TMP/orig.safetensors"
expect_exit 2 "$Q" "$TMP/tiny" --dynamic -o "$TMP/tiny" -f
expect_stderr_one_line
expect_stderr_contains "output is the input"
expect_same "$TMP/orig.safetensors" "$TMP/tiny/model.safetensors"

# Unwritable output place, full disk (stream to /dev/full).
expect_exit 2 "$Q" "$TMP/tiny" --dynamic -o /proc/st-quant-test/out
expect_stderr_one_line
if [[ -w /dev/full ]]; then
  run_cmd "$Q" "$ST_FIXTURES/llama-4m-fp16" --dynamic -o - </dev/null
  "$Q" "$ST_FIXTURES/llama-4m-fp16" --dynamic -o - >/dev/full 2>"$ERR_FILE" && fail "writing to /dev/full succeeded" || true
  expect_stderr_one_line
  expect_stderr_contains "No space left on device"
fi

# No config: cannot tell the architecture.
expect_exit 2 "$Q" "$TMP/tiny/model.safetensors" --dynamic -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "no config.json"
expect_no_file "$TMP/o"
