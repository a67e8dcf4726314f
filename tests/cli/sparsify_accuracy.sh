# st-sparsify accuracy on llama-4m-fp16 at 50 %, judged by st-eval on the files themselves:
# Wanda beats magnitude, SparseGPT (the default with --data) beats Wanda, and the default stays
# within the reference row "W8A8S 50% Wanda + static". To keep the test short it evaluates the
# first 8 evaluation sequences and compares perplexity RATIOS to the float model on the same
# sequences with the reference's ratio (reference row / reference fp32, full set).
source "$(dirname "$0")/lib.sh"

for tool in st-calibrate st-eval st-sparsify; do
  [[ -x $ST_BIN/$tool ]] || fail "$tool is not built"
done
M=$ST_FIXTURES/llama-4m-fp16
CALIB=$ST_FIXTURES/data/calib_ids.jsonl
EVAL=$ST_FIXTURES/data/eval_512x128.u32
expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$CALIB" --samples 16 -o "$TMP/stats.safetensors"

ppl() {  # ppl DIR: perplexity of a checkpoint on the first 8 evaluation sequences
  expect_exit 0 "$ST_BIN/st-eval" "$1" --data "$EVAL" --samples 8 --json -q
  json_query 'd["perplexity"]'
}
expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/stats.safetensors" --method magnitude -o "$TMP/mag" -q
expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/stats.safetensors" --method wanda -o "$TMP/wanda" -q
expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/stats.safetensors" --data "$CALIB" --samples 16 -o "$TMP/default" --json -q
expect_eq "$(json_query 'd["method"]')" sparsegpt "default method with --data"
expect_eq "$(json_query 'all(0.5 <= l["sparsity"] < 0.52 for l in d["linears"])')" True "sparsegpt sparsity"

float=$(ppl "$M")
mag=$(ppl "$TMP/mag")
wanda=$(ppl "$TMP/wanda")
default=$(ppl "$TMP/default")
note "perplexity on 8 sequences: float $float, magnitude $mag, wanda $wanda, default (sparsegpt) $default"
python3 - "$ST_FIXTURES/reference/reference_perplexity.json" "$float" "$mag" "$wanda" "$default" <<'EOF' ||
import json, sys
ref = json.load(open(sys.argv[1]))["llama-4m-fp16"]
fl, mag, wanda, default = map(float, sys.argv[2:6])
ref_ratio = ref["W8A8S 50% Wanda + static"] / ref["fp32"]
assert wanda < mag, f"wanda {wanda} does not beat magnitude {mag}"
assert default < wanda, f"the default {default} does not beat wanda {wanda}"
assert default / fl <= ref_ratio, f"default ratio {default / fl:.4f} above the reference's {ref_ratio:.4f}"
# Wanda itself is the reference's algorithm: on 8 sequences it must land within 2 % of its ratio.
assert wanda / fl <= ref_ratio * 1.02, f"wanda ratio {wanda / fl:.4f} vs reference {ref_ratio:.4f}"
EOF
  fail "accuracy check failed"
