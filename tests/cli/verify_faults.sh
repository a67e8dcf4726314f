# st-verify on real st-quant-w8a8 outputs: clean ones verify (exit 0); each planted fault is
# found, named (file and tensor) and exits 1, never a crash; bad invocations exit 2.
source "$(dirname "$0")/lib.sh"
V=$ST_BIN/st-verify
Q=$ST_BIN/st-quant-w8a8
FAULT="python3 $ST_TESTS/cli/verify_faults.py"
FP16=$ST_FIXTURES/llama-4m-fp16
W=quant_model_weight_w8a8.safetensors
[[ -x $Q ]] || fail "st-quant-w8a8 is not built"

# A static W8A8 output from HF's calibration statistics, and a dynamic one.
$FAULT stats "$ST_FIXTURES/reference/calibstats_llama-4m-fp16.json" "$TMP/stats.st"
"$Q" "$FP16" --anti-outlier none --act-method minmax --stats "$TMP/stats.st" -o "$TMP/static" -q
"$Q" "$FP16" --dynamic -o "$TMP/dynamic" -q
# The per-file checksum as the stock tool writes it, when the quantizer did not.
if [[ ! -f $TMP/static/$W.xxh3 ]]; then
  (cd "$TMP/static" && xxhsum -H3 "$W" >"$W.xxh3")
fi
fresh() { rm -rf "$TMP/f" && cp -r "$TMP/static" "$TMP/f"; }

note "clean outputs verify"
expect_exit 0 "$V" "$TMP/static"
expect_stdout_matches '^ok: quantized .* \(W8A8\), 1 weight files, [0-9]+ tensors, 28 quantized linears; checksums: 1 files'
expect_exit 0 "$V" "$TMP/static" --against "$FP16"
expect_stdout_contains "numerics: 28 linears"
expect_exit 0 "$V" "$TMP/dynamic" --against "$FP16"
expect_stdout_contains "(W8A8_DYNAMIC)"
expect_exit 0 "$V" "$TMP/static" --json --against "$FP16"
expect_json
expect_eq "$(json_query 'd["ok"]')" True "json ok"
expect_eq "$(json_query 'len(d["linears"])')" 28 "json linears"
expect_eq "$(json_query 'd["summary"]["file_checksums"]')" 1 "json file checksums"
"$Q" "$FP16" --dynamic -o - -q >"$TMP/stream.st"
expect_exit_in "$TMP/stream.st" 0 "$V" -
expect_stdout_contains "ok: stream"

note "a truncated or empty stream is a problem found, not a crash"
head -c 100000 "$TMP/stream.st" >"$TMP/short.st"
expect_exit_in "$TMP/short.st" 1 "$V" - -q
expect_stdout_contains "integrity: '<stdin>': does not parse: header length"
expect_exit 1 "$V" - -q
expect_stdout_contains "file is too small for a safetensors header (0 bytes)"

note "a flipped byte in a weight: found by the checksum"
fresh
$FAULT flip "$TMP/f/$W" model.layers.1.mlp.up_proj.weight 100
expect_exit 1 "$V" "$TMP/f" -q
expect_stdout_contains "integrity: '$TMP/f/$W': XXH3 checksum mismatch"
(cd "$TMP/f" && ! xxhsum -c --status "$W.xxh3") || fail "xxhsum -c passed a corrupted file"

note "... and by --against with the checksums removed"
rm "$TMP/f/$W.xxh3"
expect_exit 1 "$V" "$TMP/f" --against "$FP16" -q
expect_stdout_contains "numerics: '$TMP/f/$W': tensor 'model.layers.1.mlp.up_proj.weight': 1 of"
expect_stdout_contains "further than half a step"

note "a truncated file"
fresh
truncate -s -1000 "$TMP/f/$W"
expect_exit 1 "$V" "$TMP/f"
expect_stdout_contains "integrity: '$TMP/f/$W': does not parse: file is truncated"
expect_stdout_contains "XXH3 checksum mismatch"
expect_stdout_lines 4  # parse error, checksum, note, summary: no flood of consequences

note "a tensor missing from the description"
fresh
$FAULT undescribe "$TMP/f" model.layers.0.mlp.down_proj.deq_scale
expect_exit 1 "$V" "$TMP/f" -q
expect_stdout_contains "structure: '$TMP/f/$W': tensor 'model.layers.0.mlp.down_proj.deq_scale': stored but not in the description"
expect_stdout_lines 1

note "a corrupted quant_bias (checksum regenerated, so only the arithmetic can see it)"
fresh
$FAULT strip_checksums "$TMP/f/$W"
$FAULT add_i32 "$TMP/f/$W" model.layers.2.self_attn.o_proj.quant_bias 7 1000
(cd "$TMP/f" && xxhsum -H3 "$W" >"$W.xxh3")
expect_exit 1 "$V" "$TMP/f" -q
expect_stdout_contains "arithmetic: '$TMP/f/$W': tensor 'model.layers.2.self_attn.o_proj.quant_bias': row 7 is"
expect_stdout_lines 1

note "a wrong deq_scale dtype (the bf16 layout in an fp16 model)"
fresh
$FAULT deq_to_f32 "$TMP/f/$W" model.layers.0.self_attn.q_proj.deq_scale
rm "$TMP/f/$W.xxh3"
expect_exit 1 "$V" "$TMP/f" -q
expect_stdout_contains "tensor 'model.layers.0.self_attn.q_proj.deq_scale': is F32 [256], expected I64 [256]"

note "a missing part folder"
mkdir "$TMP/parts"
cp -r "$TMP/static" "$TMP/parts/part0-of-2"
expect_exit 1 "$V" "$TMP/parts"
expect_stdout_contains "structure: '$TMP/parts/part1-of-2': part folder missing (1 of 2 present)"

note "could not check: exit 2 with one line"
expect_exit 2 "$V" "$TMP/nonexistent"
expect_stderr_one_line
expect_stderr_contains "st-verify: error: '$TMP/nonexistent'"
mkdir "$TMP/empty"
expect_exit 2 "$V" "$TMP/empty"
expect_stderr_contains "no checkpoint here"
expect_exit 2 "$V" "$TMP/static" --against "$TMP/nonexistent"
expect_stderr_one_line
expect_exit 2 "$V" "$TMP/static" --against "$TMP/static"
expect_stderr_contains "float model"
expect_exit 2 "$V"
