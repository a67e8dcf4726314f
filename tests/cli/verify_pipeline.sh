# st-verify on the outputs of every tool of the pipeline: st-quant-w8a8 -> st-shard, and
# st-sparsify (W8A8S) -> st-shard -> st-compress (W8A8SC): clean ones verify with their
# checksums; faults planted in part folders and in W8A8SC tile streams are found and named.
source "$(dirname "$0")/lib.sh"
V=$ST_BIN/st-verify
FAULT="python3 $ST_TESTS/cli/verify_faults.py"
FP16=$ST_FIXTURES/llama-4m-fp16
for t in st-quant-w8a8 st-shard st-sparsify st-compress; do [[ -x $ST_BIN/$t ]] || fail "$t is not built"; done

$FAULT stats "$ST_FIXTURES/reference/calibstats_llama-4m-fp16.json" "$TMP/stats.st"
"$ST_BIN/st-quant-w8a8" "$FP16" --anti-outlier none --act-method minmax --stats "$TMP/stats.st" -o "$TMP/static" -q
"$ST_BIN/st-shard" "$TMP/static" --tp 2 -o "$TMP/tp2" -q
"$ST_BIN/st-shard" "$TMP/static" --tp 4 --no-pack -o "$TMP/tp4" -q
"$ST_BIN/st-sparsify" "$FP16" --method wanda --anti-outlier none --act-method minmax --stats "$TMP/stats.st" \
  -o "$TMP/sparse" -q
"$ST_BIN/st-shard" "$TMP/sparse" --tp 2 -o "$TMP/sparse_tp2" -q
"$ST_BIN/st-compress" "$TMP/sparse_tp2" -o "$TMP/sc" -q

note "clean part folders verify, with per-file and per-tensor checksums"
expect_exit 0 "$V" "$TMP/tp2"
expect_stdout_matches '^ok: parts .* \(W8A8\), 2 weight files, [0-9]+ tensors, [0-9]+ quantized linears; checksums: 2 files, [1-9][0-9]* tensors'
expect_stdout_not_contains "quant_bias of"  # row-parallel quant_bias checked across ranks
expect_exit 0 "$V" "$TMP/tp4"
expect_stdout_contains "checksums: 4 files"

note "W8A8S verifies against the float model; pruned weights are counted, not flagged"
expect_exit 0 "$V" "$TMP/sparse" --against "$FP16" --json
expect_eq "$(json_query 'd["model_quant_type"]')" W8A8S "model_quant_type"
expect_eq "$(json_query 'all(l["pruned"] * 100 > l["elements"] * 40 for l in d["linears"])')" True "about half pruned"
expect_eq "$(json_query 'sum(l["off_step"] for l in d["linears"])')" 0 "off-step weights"

note "SparseGPT changes kept weights and says so in __metadata__: verify reports SQNR, not a fault"
"$ST_BIN/st-sparsify" "$FP16" --stats "$TMP/stats.st" --method sparsegpt --data "$ST_FIXTURES/data/calib_ids.jsonl" \
  --samples 2 -o "$TMP/sparsegpt" -q
expect_exit 0 "$V" "$TMP/sparsegpt" --against "$FP16"
expect_stdout_contains "int8 values are not round(W / scale) of the float model"
expect_stdout_contains "numerics: 28 linears"

note "W8A8SC part folders verify (tile streams decode; quant_bias from the decoded weights)"
expect_exit 0 "$V" "$TMP/sc"
expect_stdout_contains "(W8A8SC)"

SC=quant_model_weight_w8a8sc.safetensors
note "a corrupted W8A8SC tile stream without checksums: found by decoding"
cp -r "$TMP/sc" "$TMP/sc_bad"
$FAULT strip_checksums "$TMP/sc_bad/part1-of-2/$SC"
$FAULT flip "$TMP/sc_bad/part1-of-2/$SC" model.layers.2.mlp.gate_up_proj.weight 300
expect_exit 1 "$V" "$TMP/sc_bad" -q
expect_stdout_contains "integrity: '$TMP/sc_bad/part1-of-2/$SC': tensor 'model.layers.2.mlp.gate_up_proj.weight': tile stream does not decode"
expect_stdout_lines 1

note "a wrong W8A8SC index length"
cp -r "$TMP/sc" "$TMP/sc_idx"
$FAULT shorten "$TMP/sc_idx/part0-of-2/$SC" model.layers.0.mlp.down_proj.index 8
expect_exit 1 "$V" "$TMP/sc_idx" -q
expect_stdout_contains "tensor 'model.layers.0.mlp.down_proj.index': is I8 [24], expected I8 [32] (ceil(k/256) * ceil(n/128) * 8)"

W=quant_model_weight_w8a8.safetensors
note "a flipped byte in one part: located to the part, file and tensor"
cp -r "$TMP/tp2" "$TMP/tp2_flip"
$FAULT flip "$TMP/tp2_flip/part1-of-2/$W" model.layers.1.self_attn.query_key_value.weight 5
expect_exit 1 "$V" "$TMP/tp2_flip" -q
expect_stdout_contains "integrity: '$TMP/tp2_flip/part1-of-2/$W': tensor 'model.layers.1.self_attn.query_key_value.weight': XXH3 mismatch"

note "row-parallel quant_bias must be zero beyond the first rank"
cp -r "$TMP/tp2" "$TMP/tp2_qb"
$FAULT strip_checksums "$TMP/tp2_qb/part1-of-2/$W"
$FAULT add_i32 "$TMP/tp2_qb/part1-of-2/$W" model.layers.1.mlp.down_proj.quant_bias 3 1
expect_exit 1 "$V" "$TMP/tp2_qb" -q
expect_stdout_contains "tensor 'model.layers.1.mlp.down_proj.quant_bias': row 3 is 1, expected 0"
expect_stdout_lines 1

note "a missing part folder, and parts that disagree"
cp -r "$TMP/tp4" "$TMP/tp4_gap"
rm -rf "$TMP/tp4_gap/part2-of-4"
expect_exit 1 "$V" "$TMP/tp4_gap" -q
expect_stdout_contains "structure: '$TMP/tp4_gap/part2-of-4': part folder missing (3 of 4 present)"
cp -r "$TMP/tp2" "$TMP/tp_mixed"
cp -r "$TMP/tp4/part1-of-4" "$TMP/tp_mixed/part1-of-4"
expect_exit 1 "$V" "$TMP/tp_mixed" -q
expect_stdout_contains "part folder of a different split"

note "--against inside part folders: each part's rows are compared with their float source rows"
expect_exit 0 "$V" "$TMP/tp2" --against "$FP16" --json
expect_eq "$(json_query 'len(d["linears"])')" 56 "per-part source linears (28 x 2)"
expect_exit 0 "$V" "$TMP/sc" --against "$FP16" -q
cp -r "$TMP/tp2" "$TMP/tp2_num"
$FAULT strip_checksums "$TMP/tp2_num/part1-of-2/$W"
$FAULT flip "$TMP/tp2_num/part1-of-2/$W" model.layers.1.self_attn.query_key_value.weight $((130 * 256 + 7))
$FAULT flip "$TMP/tp2_num/part1-of-2/$W" model.embed_tokens.weight 77
expect_exit 1 "$V" "$TMP/tp2_num" --against "$FP16" -q
expect_stdout_contains "tensor 'model.layers.1.self_attn.query_key_value.weight': 1 of 16384 int8 values are further than half a step from W / weight_scale in the rows from 'model.layers.1.self_attn.k_proj'"
expect_stdout_contains "tensor 'model.embed_tokens.weight': FLOAT tensor differs from the float model's"
