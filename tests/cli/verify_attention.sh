# st-verify on attention quantization: st-quant-w8a8 --fa-quant outputs (FAQuant for Llama,
# FAKQuant for DeepSeek MLA) and their part folders verify; broken scales and markers are named.
source "$(dirname "$0")/lib.sh"
V=$ST_BIN/st-verify
FAULT="python3 $ST_TESTS/cli/verify_faults.py"
for t in st-calibrate st-quant-w8a8 st-shard; do [[ -x $ST_BIN/$t ]] || fail "$t is not built"; done
LLAMA=$ST_FIXTURES/llama-4m-fp16
DS=$ST_FIXTURES/deepseekv3-mla-6m-fp16
W=quant_model_weight_w8a8.safetensors

drop_key() {  # drop_key FILE KEY: remove KEY from the JSON object in FILE
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); del d[sys.argv[2]]; json.dump(d, open(sys.argv[1], "w"), indent=2)' "$1" "$2"
}
for m in LLAMA DS; do
  "$ST_BIN/st-calibrate" "${!m}" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 2 --seq-len 64 -o "$TMP/$m.st" -q
  "$ST_BIN/st-quant-w8a8" "${!m}" --anti-outlier none --act-method minmax --stats "$TMP/$m.st" --fa-quant -o "$TMP/$m" -q 2>/dev/null
done

note "FAQuant and FAKQuant outputs verify, whole and in part folders"
expect_exit 0 "$V" "$TMP/LLAMA" --against "$LLAMA"
expect_exit 0 "$V" "$TMP/DS" --against "$DS"
"$ST_BIN/st-shard" "$TMP/LLAMA" --tp 8 -o "$TMP/LLAMA_tp8" -q  # 8 heads, 4 KV heads: KV replicated
expect_exit 0 "$V" "$TMP/LLAMA_tp8"
"$ST_BIN/st-shard" "$TMP/DS" --tp 2 -o "$TMP/DS_tp2" -q
expect_exit 0 "$V" "$TMP/DS_tp2" --against "$DS"

note "a nonzero attention offset, a missing fa_quant_type, a missing MLA marker"
cp -r "$TMP/LLAMA" "$TMP/bad"
$FAULT strip_checksums "$TMP/bad/$W"
$FAULT flip "$TMP/bad/$W" model.layers.2.self_attn.fa_k.offset 1
drop_key "$TMP/bad/quant_model_description.json" fa_quant_type
expect_exit 1 "$V" "$TMP/bad" -q
expect_stdout_contains "arithmetic: '$TMP/bad/$W': tensor 'model.layers.2.self_attn.fa_k.offset': head 1 is 90, expected 0 (symmetric)"
expect_stdout_contains "structure: '$TMP/bad/quant_model_description.json': attention scales are stored but fa_quant_type is missing"
expect_stdout_lines 2
cp -r "$TMP/DS" "$TMP/bad_mla"
drop_key "$TMP/bad_mla/quant_model_description.json" model.layers.1.self_attn.quant_type
expect_exit 1 "$V" "$TMP/bad_mla" -q
expect_stdout_contains "tensor 'model.layers.1.self_attn.quant_type': missing or not \"INT8\""
