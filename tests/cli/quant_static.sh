#!/usr/bin/env bash
# st-quant-w8a8 --stats on the three fixtures; every quantized tensor checked independently
# (tests/cli/check_w8a8.py recomputes the DESIGN.md formulas from the float weights).
# ctest: slow
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
REF=$ST_FIXTURES/reference

python3 "$ST_TESTS/cli/stats_from_reference.py" "$REF/calibstats_llama-4m-fp16.json" "$TMP/llama.st"
python3 "$ST_TESTS/cli/stats_from_reference.py" "$REF/calibstats_deepseekv3-mla-6m-fp16.json" "$TMP/ds.st" \
  --experts-from-shared=8

for m in llama-4m-fp16 llama-4m-bf16; do
  expect_exit 0 "$Q" "$ST_FIXTURES/$m" --anti-outlier none --act-method minmax --stats "$TMP/llama.st" -o "$TMP/$m"
  expect_stdout_empty
  expect_stderr_contains "28 linears W8A8, 0 float"
  expect_file "$TMP/$m/quant_model_weight_w8a8.safetensors"
  for f in quant_model_description.json config.json generation_config.json tokenizer.json tokenizer_config.json; do
    expect_file "$TMP/$m/$f"
  done
  expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$ST_FIXTURES/$m" "$TMP/$m" --stats "$TMP/llama.st"
  expect_stdout_contains "28 linears W8A8 checked"
  expect_eq "$(json_query 'd["quantize"]' "$TMP/$m/config.json")" w8a8 "config.json quantize"
  expect_eq "$(json_query 'd["model_quant_type"]' "$TMP/$m/quant_model_description.json")" W8A8 "model_quant_type"
done
# dtypes: fp16 model -> deq_scale I64, input_scale F16; bf16 -> F32 / BF16 (header read by python)
hdr() { python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; h=json.loads(f.read(n)); t=h[sys.argv[2]]; print(t["dtype"], t["shape"])' "$@"; }
P=model.layers.0.self_attn.q_proj
expect_eq "$(hdr "$TMP/llama-4m-fp16/quant_model_weight_w8a8.safetensors" $P.deq_scale)" "I64 [256]" deq_scale
expect_eq "$(hdr "$TMP/llama-4m-fp16/quant_model_weight_w8a8.safetensors" $P.input_scale)" "F16 [1]" input_scale
expect_eq "$(hdr "$TMP/llama-4m-bf16/quant_model_weight_w8a8.safetensors" $P.deq_scale)" "F32 [256]" deq_scale
expect_eq "$(hdr "$TMP/llama-4m-bf16/quant_model_weight_w8a8.safetensors" $P.input_offset)" "BF16 [1]" input_offset
expect_eq "$(hdr "$TMP/llama-4m-bf16/quant_model_weight_w8a8.safetensors" $P.weight_scale)" "F32 [256, 1]" weight_scale

# DeepSeek MLA + MoE, every linear static by a rule: every expert quantized; the routers and kv_b_proj
# float; a note that vllm-ascend has no static MoE scheme.
expect_exit 0 "$Q" "$ST_FIXTURES/deepseekv3-mla-6m-fp16" --anti-outlier none --act-method minmax --stats "$TMP/ds.st" \
  --scheme '*=W8A8' -o "$TMP/ds"
expect_stderr_contains "warning: 72 routed-expert linears are static: vllm-ascend has no static W8A8 MoE scheme"
expect_stderr_contains "100 linears W8A8, 7 float"
expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$ST_FIXTURES/deepseekv3-mla-6m-fp16" "$TMP/ds" --stats "$TMP/ds.st"
expect_eq "$(json_query 'd["model.layers.1.mlp.gate.weight"]' "$TMP/ds/quant_model_description.json")" FLOAT router
expect_eq "$(json_query 'd["model.layers.2.mlp.experts.5.down_proj.quant_bias"]' "$TMP/ds/quant_model_description.json")" W8A8 expert

# The checker is not a rubber stamp: one flipped int8 weight is found.
cp -r "$TMP/llama-4m-fp16" "$TMP/tampered"
python3 - "$TMP/tampered/quant_model_weight_w8a8.safetensors" <<'PY'
import json, struct, sys
f = open(sys.argv[1], "r+b"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
b = h["model.layers.2.mlp.up_proj.weight"]["data_offsets"][0] + 8 + n + 5
f.seek(b); v = f.read(1)[0]; f.seek(b); f.write(bytes([(v + 1) % 256]))
PY
expect_exit 1 python3 "$ST_TESTS/cli/check_w8a8.py" "$ST_FIXTURES/llama-4m-fp16" "$TMP/tampered" --stats "$TMP/llama.st"
expect_stdout_contains "model.layers.2.mlp.up_proj.weight: [0,5]"

# --float: a glob on one member keeps its whole fused group float.
expect_exit 0 "$Q" "$ST_FIXTURES/llama-4m-fp16" --anti-outlier none --act-method minmax --stats "$TMP/llama.st" --float '*.layers.3.self_attn.k_proj' \
  --float '*.down_proj' -o "$TMP/fl"
expect_stderr_contains "21 linears W8A8, 7 float"
expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$ST_FIXTURES/llama-4m-fp16" "$TMP/fl" --stats "$TMP/llama.st" \
  --float 'layers\.3\.self_attn\.k_proj|down_proj'
expect_eq "$(json_query 'd["model.layers.3.self_attn.q_proj.weight"]' "$TMP/fl/quant_model_description.json")" FLOAT q_follows_k
