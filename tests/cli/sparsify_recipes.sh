# st-sparsify takes st-quant-w8a8's per-linear rules where they make sense: --scheme / --recipe with
# W8A8S (pruned) or FLOAT, --dry-run [--json]. A FLOAT layer keeps its float weights byte for byte
# (its groups are neither smoothed nor pruned); the others are pruned. Rules of another kind of
# checkpoint (W8A8, W8A8_DYNAMIC) and a recipe asking for attention quantization are one-line
# errors, exit 2, nothing written.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/compress_helpers.bash"
S=$ST_BIN/st-sparsify
M=$ST_FIXTURES/llama-4m-fp16
make_stats "$M" "$TMP/stats.st"

note "--dry-run: the plan, nothing written"
expect_exit 0 "$S" "$M" --dry-run --scheme 'model.layers.0.*=FLOAT'
expect_stdout_matches "^model\.layers\.0\.mlp\.down_proj +FLOAT +--scheme 'model\.layers\.0\.\*=FLOAT'$"
expect_stdout_matches '^model\.layers\.1\.self_attn\.q_proj +W8A8S +the mode.s scheme \(W8A8S\)$'
expect_stdout_contains "model_quant_type W8A8S; config.json quantize w8a8s"
expect_stderr_empty
echo '{"rules": ["model.layers.0.*=FLOAT", "*=W8A8S"], "act_method": "minmax"}' >"$TMP/recipe.json"
expect_exit 0 "$S" "$M" --dry-run --json --recipe "$TMP/recipe.json"
expect_json
expect_eq "$(json_query 'd["schemes"]')" '{"FLOAT": 7, "W8A8S": 21}' "recipe schemes"

note "a recipe run: layer 0 float and untouched, the rest pruned"
expect_exit 0 "$S" "$M" --stats "$TMP/stats.st" --method wanda --recipe "$TMP/recipe.json" -o "$TMP/r" --json -q
expect_eq "$(json_query 'd["linears_sparsified"]')" 21 "pruned linears"
expect_eq "$(json_query 'd["linears_float"]')" 7 "float linears"
run_cmd python3 - "$M/model.safetensors" "$TMP/r" <<'EOF'
import json, struct, sys
def tensors(path):
    f = open(path, "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); h.pop("__metadata__", None)
    base = 8 + n
    def read(name):
        b, e = h[name]["data_offsets"]; f.seek(base + b); return h[name]["dtype"], f.read(e - b)
    return h, read
fh, fread = tensors(sys.argv[1])
oh, oread = tensors(sys.argv[2] + "/quant_model_weight_w8a8s.safetensors")
desc = json.load(open(sys.argv[2] + "/quant_model_description.json"))
for name in fh:
    if name.startswith("model.layers.0.") and name.endswith("_proj.weight"):
        assert desc[name] == "FLOAT", name
        assert fread(name) == oread(name), name + " changed"
    if name.startswith("model.layers.1.") and name.endswith("_proj.weight"):
        assert desc[name] == "W8A8S" and oh[name]["dtype"] == "I8", name
print("ok")
EOF
expect_stdout_contains ok

note "rules of another kind, attention quantization: one line, exit 2, nothing written"
bad() {  # bad MESSAGE ARGS...
  local msg=$1
  shift
  expect_exit 2 "$S" "$M" --stats "$TMP/stats.st" --method wanda "$@" -o "$TMP/x"
  expect_stderr_one_line
  expect_stderr_contains "$msg"
  expect_no_file "$TMP/x"
}
bad "--scheme '*.mlp.*=W8A8_DYNAMIC': a sparse (W8A8S) checkpoint takes W8A8S or FLOAT rules" --scheme '*.mlp.*=W8A8_DYNAMIC'
bad "--scheme '*=W8A8': a sparse (W8A8S) checkpoint takes W8A8S or FLOAT rules" --scheme '*=W8A8'
bad "--scheme '*.nothing=FLOAT' matches no linear" --scheme '*.nothing=FLOAT'
echo '{"fa_quant": true}' >"$TMP/fa.json"
bad "st-sparsify does not quantize attention (fa_*)" --recipe "$TMP/fa.json"
expect_exit 2 "$ST_BIN/st-quant-w8a8" "$M" --stats "$TMP/stats.st" --scheme '*=W8A8S' -o "$TMP/x"
expect_stderr_contains "--scheme '*=W8A8S': W8A8S is the pruned scheme of st-sparsify"
expect_no_file "$TMP/x"
