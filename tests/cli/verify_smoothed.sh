# st-verify --against on outputs that anti-outlier smoothing rescaled (st-quant-w8a8's default
# static path): the numbers compare with the smoothed float weights W' = W diag(s) rebuilt from
# the stored norms and up_proj scales, not with W (which gave "worst -11 dB" and a note about
# pruning when nothing was pruned); the half-step check still finds a changed weight or norm.
# ctest: slow
source "$(dirname "$0")/lib.sh"
V=$ST_BIN/st-verify
FAULT="python3 $ST_TESTS/cli/verify_faults.py"
L=$ST_FIXTURES/llama-4m-fp16 BF=$ST_FIXTURES/llama-4m-bf16 DS=$ST_FIXTURES/deepseekv3-mla-6m-fp16
CAL=(--data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 4 --seq-len 128 -q)
W=quant_model_weight_w8a8.safetensors
for m in L:$L BF:$BF DS:$DS; do "$ST_BIN/st-calibrate" "${m#*:}" "${CAL[@]}" -o "$TMP/${m%%:*}.st"; done

# clean MODEL DIR: verifies with no problem, no note about pruning, every int8 weight within
# half a step of W' / scale, and the worst linear far above what W instead of W' gives.
clean() {
  expect_exit 0 "$V" "$2" --against "$1" --json
  expect_stdout_not_contains "pruning"
  expect_stdout_contains "compared with the smoothed float weights"
  expect_eq "$(json_query 'sum(l["off_step"] for l in d["linears"])')" 0 "off-step weights"
  expect_eq "$(json_query 'min(l["sqnr_db"] for l in d["linears"]) > 30')" True "worst SQNR above 30 dB"
}

note "default static (smoothing search + act-method auto): fp16, bf16, DeepSeek MLA with experts"
"$ST_BIN/st-quant-w8a8" "$L" --stats "$TMP/L.st" -o "$TMP/q" -q
clean "$L" "$TMP/q"
"$ST_BIN/st-quant-w8a8" "$BF" --stats "$TMP/BF.st" -o "$TMP/qbf" -q
clean "$BF" "$TMP/qbf"
"$ST_BIN/st-quant-w8a8" "$DS" --stats "$TMP/DS.st" -o "$TMP/qds" -q 2>/dev/null
clean "$DS" "$TMP/qds"

note "linears kept float after smoothing (--float, --fallback) hold W' in the model dtype"
"$ST_BIN/st-quant-w8a8" "$L" --stats "$TMP/L.st" --float '*.q_proj' --float '*.down_proj' -o "$TMP/qf" -q
clean "$L" "$TMP/qf"
"$ST_BIN/st-quant-w8a8" "$DS" --stats "$TMP/DS.st" --fa-quant --fallback 2 -o "$TMP/qdsf" -q 2>/dev/null
clean "$DS" "$TMP/qdsf"

note "a changed int8 weight of a smoothed linear is found"
cp -r "$TMP/q" "$TMP/bad_w"
$FAULT strip_checksums "$TMP/bad_w/$W"
$FAULT flip "$TMP/bad_w/$W" model.layers.1.self_attn.q_proj.weight 1000
expect_exit 1 "$V" "$TMP/bad_w" --against "$L" -q
expect_stdout_contains "tensor 'model.layers.1.self_attn.q_proj.weight': 1 of 65536 int8 values are further than half a step from W' / weight_scale (W' the smoothed float weights)"
expect_stdout_contains "tensor 'model.layers.1.self_attn.q_proj.quant_bias': row 3 is"  # its row sum changed too
expect_stdout_lines 2

note "a changed norm changes the rebuilt scales: the linears it feeds no longer match"
cp -r "$TMP/q" "$TMP/bad_n"
$FAULT strip_checksums "$TMP/bad_n/$W"
$FAULT flip "$TMP/bad_n/$W" model.layers.2.input_layernorm.weight 21
expect_exit 1 "$V" "$TMP/bad_n" --against "$L" -q
expect_stdout_contains "tensor 'model.layers.2.self_attn.q_proj.weight': "
expect_stdout_contains "tensor 'model.layers.2.self_attn.v_proj.weight': "

note "a changed value of a float-kept smoothed linear is found"
cp -r "$TMP/qf" "$TMP/bad_f"
$FAULT strip_checksums "$TMP/bad_f/$W"
$FAULT flip "$TMP/bad_f/$W" model.layers.0.mlp.down_proj.weight 301
expect_exit 1 "$V" "$TMP/bad_f" --against "$L" -q
expect_stdout_contains "tensor 'model.layers.0.mlp.down_proj.weight': 1 of 176128 values differ from the smoothed float weights"

note "part folders of a smoothed checkpoint: numerics are left to the merged checkpoint, with a note"
"$ST_BIN/st-shard" "$TMP/q" --tp 2 -o "$TMP/parts" -q
expect_exit 0 "$V" "$TMP/parts" --against "$L"
expect_stdout_contains "numerics are compared in the merged checkpoint only"
expect_stdout_not_contains "pruning"
"$ST_BIN/st-shard" --merge "$TMP/parts" -o "$TMP/merged" -q
clean "$L" "$TMP/merged"
