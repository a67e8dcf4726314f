#!/usr/bin/env bash
# Per-linear schemes (--scheme, --recipe, --dry-run) and the DeepSeek default recipe as the seeds ship
# it (attention static W8A8, kv_b_proj float, MLPs and experts W8A8_DYNAMIC, FAKQuant): the output is
# checked independently (check_w8a8.py) and against both loaders' rules, shards and merges bit for bit
# at TP 2, verifies, and st-verify still finds a fault planted in a static and in a dynamic linear.
# Bad rules are one-line errors, exit 2, nothing written.
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
DS=$ST_FIXTURES/deepseekv3-mla-6m-fp16
L=$ST_FIXTURES/llama-4m-fp16
FAULT="python3 $ST_TESTS/cli/verify_faults.py"
expect_exit 0 "$ST_BIN/st-calibrate" "$DS" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 8 --seq-len 256 \
  -o "$TMP/ds.st" -q

note "--dry-run: every linear's scheme and why, nothing written"
expect_exit 0 "$Q" "$DS" --dry-run
expect_stdout_matches '^model\.layers\.0\.self_attn\.q_a_proj +W8A8 +the mode.s scheme \(W8A8\)$'
expect_stdout_matches '^model\.layers\.2\.self_attn\.kv_b_proj +FLOAT +kv_b_proj: the MLA loaders need it float$'
expect_stdout_matches '^model\.layers\.2\.mlp\.experts\.7\.down_proj +W8A8_DYNAMIC +deepseek_v3 default: MLPs and experts'
expect_stdout_matches '^model\.layers\.1\.mlp\.gate +FLOAT +MoE router: float by default$'
expect_stdout_contains "model_quant_type W8A8_DYNAMIC; config.json quantize w8a8_dynamic, mla_quantize w8a8"
expect_stderr_empty
expect_exit 0 "$Q" "$DS" --dry-run --json --fa-quant
expect_json
expect_eq "$(json_query 'd["schemes"]')" '{"FLOAT": 7, "W8A8": 16, "W8A8_DYNAMIC": 84}' "DeepSeek default schemes"
expect_eq "$(json_query 'd["config"]')" '{"quantize": "w8a8_dynamic", "mla_quantize": "w8a8"}' config
expect_eq "$(json_query 'd["fa_quant_type"]')" FAKQuant fa_quant_type
# --dynamic keeps kv_b_proj float; every linear static is a rule, with a note on static MoE.
expect_exit 0 "$Q" "$DS" --dynamic --dry-run --json
expect_eq "$(json_query 'd["schemes"]')" '{"FLOAT": 7, "W8A8_DYNAMIC": 100}' "--dynamic schemes"
expect_eq "$(json_query 'd["config"]')" '{"quantize": "w8a8_dynamic"}' "--dynamic config"
expect_exit 0 "$Q" "$DS" --scheme '*=W8A8' --dry-run --json
expect_eq "$(json_query 'd["schemes"]')" '{"FLOAT": 7, "W8A8": 100}' "all-static schemes"
expect_eq "$(json_query 'd["notes"][0]')" \
  "72 routed-expert linears are static: vllm-ascend has no static W8A8 MoE scheme and cannot load them (MindIE can)"

# --fa-quant goes with --dynamic (the statistics feed only the attention scales).
expect_exit 0 "$Q" "$DS" --dynamic --stats "$TMP/ds.st" --fa-quant -o "$TMP/dyn_fa" -q
expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$DS" "$TMP/dyn_fa" --stats "$TMP/ds.st" --dynamic . --fa
expect_eq "$(json_query 'd["fa_quant_type"]' "$TMP/dyn_fa/quant_model_description.json")" FAKQuant "dynamic + FAKQuant"

note "a recipe file: rules after --scheme's, options where the command line is silent"
cat >"$TMP/recipe.json" <<'EOF'
{
  "rules": ["*.mlp.*=W8A8_DYNAMIC", "*.self_attn.o_proj=FLOAT", "*=W8A8"],
  "fa_quant": false,
  "anti_outlier": "none",
  "act_method": "minmax"
}
EOF
expect_exit 0 "$Q" "$L" --recipe "$TMP/recipe.json" --scheme 'model.layers.0.*=FLOAT' --dry-run --json
expect_eq "$(json_query 'd["schemes"]')" '{"FLOAT": 10, "W8A8": 9, "W8A8_DYNAMIC": 9}' "llama recipe schemes"
expect_eq "$(json_query '[l["why"] for l in d["linears"] if l["linear"] == "model.layers.1.self_attn.o_proj"][0]')" \
  "recipe $TMP/recipe.json: rule 2 '*.self_attn.o_proj=FLOAT'" "why names the recipe rule"
expect_eq "$(json_query 'd["model_quant_type"]')" W8A8 "a non-MLA mix is W8A8 (msModelSlim's priority)"
expect_exit 0 "$Q" "$L" --recipe "$TMP/recipe.json" --scheme '*=W8A8_DYNAMIC' -o "$TMP/l_dyn" -q
expect_eq "$(json_query 'd["model_quant_type"]' "$TMP/l_dyn/quant_model_description.json")" W8A8_DYNAMIC \
  "dynamic-only rules need no statistics"

note "bad rules: one line, exit 2, nothing written"
bad() {  # bad MESSAGE ARGS...: st-quant-w8a8 ARGS -o $TMP/x fails with MESSAGE
  local msg=$1
  shift
  expect_exit 2 "$Q" "$@" -o "$TMP/x"
  expect_stderr_one_line
  expect_stderr_contains "$msg"
  expect_no_file "$TMP/x"
}
bad "--scheme '*=W4A8': unknown scheme 'W4A8' (W8A8, W8A8_DYNAMIC, W8A8S or FLOAT)" "$DS" --stats "$TMP/ds.st" --scheme '*=W4A8'
bad "--scheme '*.nothing=W8A8' matches no linear" "$DS" --stats "$TMP/ds.st" --scheme '*.nothing=W8A8'
bad "fused group 'model.layers.0.self_attn:q_a+kv_a' split: model.layers.0.self_attn.q_a_proj is W8A8_DYNAMIC" \
  "$DS" --stats "$TMP/ds.st" --scheme '*.q_a_proj=W8A8_DYNAMIC'
bad "--scheme '*.kv_b_proj=W8A8' matches only linears the loaders keep float" "$DS" --stats "$TMP/ds.st" \
  --scheme '*.kv_b_proj=W8A8'
bad "static W8A8 needs activation statistics (--stats): model.layers.0.self_attn.q_a_proj is W8A8" \
  "$DS" --dynamic --scheme '*.self_attn.*=W8A8'
bad "static W8A8 needs activation statistics (--stats)" "$L" --scheme '*.mlp.*=W8A8_DYNAMIC'
echo '{"rules": ["*=W8A8"], "fallbak": 1}' >"$TMP/typo.json"
bad "'$TMP/typo.json': unknown recipe key 'fallbak'" "$L" --stats "$TMP/ds.st" --recipe "$TMP/typo.json"
bad "missing.json': cannot open: No such file or directory" "$L" --dynamic --recipe "$TMP/missing.json"

note "the DeepSeek default: the seed's shape, checked independently and against both loaders"
expect_exit 0 "$Q" "$DS" --stats "$TMP/ds.st" --fa-quant -o "$TMP/d"
expect_stderr_contains "16 linears W8A8, 84 W8A8_DYNAMIC, 7 float"
expect_file "$TMP/d/quant_model_weight_w8a8_dynamic.safetensors"
expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$DS" "$TMP/d" --stats "$TMP/ds.st" --dynamic '\.mlp\.' --fa --smoothed
python3 - "$TMP/d" <<'EOF' || fail "the DeepSeek default does not have the seed's shape"
import json, sys
d = json.load(open(sys.argv[1] + "/quant_model_description.json"))
cfg = json.load(open(sys.argv[1] + "/config.json"))
assert d["model_quant_type"] == "W8A8_DYNAMIC" and d["fa_quant_type"] == "FAKQuant", d["model_quant_type"]
assert cfg["quantize"] == "w8a8_dynamic" and cfg["mla_quantize"] == "w8a8", cfg
for layer in range(4):
    a = f"model.layers.{layer}.self_attn."
    for leaf in ("q_a_proj", "kv_a_proj_with_mqa", "q_b_proj", "o_proj"):
        for s in ("weight", "input_scale", "input_offset", "quant_bias", "deq_scale"):
            assert d[a + leaf + "." + s] == "W8A8", (leaf, s)
    assert d[a + "kv_b_proj.weight"] == "FLOAT"
    assert d[a + "fa_k.scale"] == "FAQuant" and d[a + "quant_type"] == "INT8"
mlp = [k for k in d if ".mlp." in k and k.endswith("_proj.weight")]
assert len(mlp) == 84 and all(d[k] == "W8A8_DYNAMIC" for k in mlp), len(mlp)
assert all(d[f"model.layers.{i}.mlp.gate.weight"] == "FLOAT" for i in (1, 2, 3))
assert d["lm_head.weight"] == "FLOAT"
EOF
# Both loaders' rules (tests/conformance): only issue 14's layout rules may remain.
run_cmd python3 "$ST_TESTS/conformance/check_consumers.py" "$TMP/d" --consumer both
grep -vE ' (safetensors-aligned|input-metadata|side-files|config-torch_dtype): ' "$OUT_FILE" >"$TMP/left" || true
[[ ! -s $TMP/left ]] || fail "the DeepSeek default breaks loader rules:
$(cat "$TMP/left")"

note "TP 2 shard + merge is bit-identical; st-verify passes it and finds planted faults"
expect_exit 0 "$ST_BIN/st-shard" "$TMP/d" --tp 2 -o "$TMP/parts" -q
expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/parts" -o "$TMP/merged" -q
W=quant_model_weight_w8a8_dynamic.safetensors
expect_same "$TMP/d/$W" "$TMP/merged/$W"
expect_same "$TMP/d/quant_model_description.json" "$TMP/merged/quant_model_description.json"
expect_exit 0 "$ST_BIN/st-verify" "$TMP/d" --against "$DS"
expect_stdout_matches '^ok: quantized .* \(W8A8_DYNAMIC\), 1 weight files, [0-9]+ tensors, 100 quantized linears'
expect_exit 0 "$ST_BIN/st-verify" "$TMP/parts"
for p in model.layers.1.self_attn.q_b_proj model.layers.2.mlp.experts.3.down_proj; do
  rm -rf "$TMP/f" && cp -r "$TMP/d" "$TMP/f"
  $FAULT flip "$TMP/f/$W" "$p.weight_scale" 2
  $FAULT strip_checksums "$TMP/f/$W"
  expect_exit 1 "$ST_BIN/st-verify" "$TMP/f" --against "$DS"
  expect_stdout_matches "^(arithmetic|numerics): .*tensor '$p\."
done

note "st-eval runs each linear with its own arithmetic"
expect_exit 0 "$ST_BIN/st-eval" "$DS" --quant "$TMP/d" --data "$ST_FIXTURES/data/eval_512x128.u32" --samples 8 --json -q
expect_eq "$(json_query 'abs(d["perplexity_change_percent"]) < 0.5')" True "within 0.5 % of float on 8 sequences"

note "st-inspect --diff of two recipes' outputs is compact (grouped by change, type and layers)"
expect_exit 0 "$Q" "$DS" --stats "$TMP/ds.st" --fa-quant --scheme '*=W8A8' -o "$TMP/static" -q
expect_exit 1 "$ST_BIN/st-inspect" --diff "$TMP/d" "$TMP/static"
expect_stdout_contains "description: model_quant_type: W8A8_DYNAMIC -> W8A8"
expect_stdout_matches 'W8A8_DYNAMIC -> W8A8 +layers 0-3$'
[[ $(wc -l <"$OUT_FILE") -lt 30 ]] || fail "the diff of two recipes is not compact: $(wc -l <"$OUT_FILE") lines"
