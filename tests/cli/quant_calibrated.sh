#!/usr/bin/env bash
# st-calibrate -> st-quant-w8a8 (static, --fa-quant) -> independent check -> st-eval sanity,
# on llama-4m-fp16 and the DeepSeek MLA/MoE model.
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
DATA=$ST_FIXTURES/data
[[ -x $ST_BIN/st-calibrate ]] || { note "no st-calibrate built: skipped"; exit 0; }

for m in llama-4m-fp16 deepseekv3-mla-6m-fp16; do
  expect_exit 0 "$ST_BIN/st-calibrate" "$ST_FIXTURES/$m" --data "$DATA/calib_ids.jsonl" --samples 4 --seq-len 256 \
    -o "$TMP/$m.st" -q
  expect_exit 0 "$Q" "$ST_FIXTURES/$m" --anti-outlier none --act-method minmax --stats "$TMP/$m.st" --fa-quant -o "$TMP/$m"
  mix=()  # DeepSeek's default: MLPs and experts W8A8_DYNAMIC
  [[ $m == deepseek* ]] && mix=(--dynamic '\.mlp\.')
  expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$ST_FIXTURES/$m" "$TMP/$m" --stats "$TMP/$m.st" --fa "${mix[@]}"
done
D=$TMP/deepseekv3-mla-6m-fp16/quant_model_description.json
expect_eq "$(json_query 'd["fa_quant_type"]' "$D")" FAKQuant fa_quant_type
expect_eq "$(json_query 'd["model.layers.2.self_attn.quant_type"]' "$D")" INT8 mla_marker
expect_eq "$(json_query 'd["fa_quant_type"]' "$TMP/llama-4m-fp16/quant_model_description.json")" FAQuant fa_quant_type

# The quantized model still works: st-eval runs the files' integer arithmetic.
if [[ -x $ST_BIN/st-eval ]]; then
  expect_exit 0 "$Q" "$ST_FIXTURES/llama-4m-fp16" --anti-outlier none --act-method minmax --stats "$TMP/llama-4m-fp16.st" -o "$TMP/static" -q
  expect_exit 0 "$ST_BIN/st-eval" "$ST_FIXTURES/llama-4m-fp16" --quant "$TMP/static" --data "$DATA/eval_512x128.u32" \
    --samples 4 --seq-len 256 --json -q
  change=$(json_query 'd["perplexity_change_percent"]')
  awk -v c="$change" 'BEGIN{exit !(c > -1 && c < 3)}' || fail "static W8A8 perplexity change $change % (want < 3 %)"
fi

# Attention statistics missing (statistics without them) or for another model: named.
python3 "$ST_TESTS/cli/stats_from_reference.py" "$ST_FIXTURES/reference/calibstats_llama-4m-fp16.json" "$TMP/ref.st"
expect_exit 2 "$Q" "$ST_FIXTURES/llama-4m-fp16" --anti-outlier none --act-method minmax --stats "$TMP/ref.st" --fa-quant -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "tensor 'model.layers.0.self_attn.q_absmax': no attention statistics"
expect_no_file "$TMP/o"
expect_exit 2 "$Q" "$ST_FIXTURES/llama-4m-fp16" --dynamic --fa-quant -o "$TMP/o"
expect_stderr_one_line
expect_stderr_contains "--fa-quant needs --stats"
