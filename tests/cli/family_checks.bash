# Every tool on a tiny random checkpoint of one model family (tests/cli/tiny_family.py), sourced
# by tests/cli/family_*.sh after lib.sh:
#   - st-eval's float perplexity equals an independent float64 reference forward pass
#     (tests/cli/reference_forward.py) to 1e-5 relative;
#   - st-calibrate records exactly the linears the reference sees (a fused W_pack / query_key_value
#     / gate_up_proj / dense_h_to_4h is one linear; routers, kept float, none), each input's
#     min / max equal to the reference's to 1e-5 relative;
#   - st-quant-w8a8 static (the default), --dynamic, --fa-quant and a mixed recipe (attention static,
#     MLPs / experts dynamic), and st-sparsify, each passing
#     st-verify against the float model and running in st-eval close to it (KL bound);
#   - st-shard --tp 2 of the float and the static model (check_tp): parts pass st-verify, st-eval
#     on the parts equals st-eval on the whole, and --merge gives every file back byte for byte.
PY=/usr/bin/python3  # Debian's, with python3-numpy (scripts/install-deps.sh)

# eval_json MODEL [st-eval flags...]: st-eval --json on the family's tokens into the last stdout.
eval_json() {
  expect_exit 0 "$ST_BIN/st-eval" "$@" --data "$TOK" --seq-len 16 --json -q
}

# kl_below BOUND WHAT: the last st-eval --json's kl_mean is finite and below BOUND.
kl_below() {
  local kl
  kl=$(json_query 'd["kl_mean"]')
  python3 -c 'import math,sys; k,b=map(float,sys.argv[1:]); sys.exit(0 if math.isfinite(k) and k < b else 1)' "$kl" "$1" ||
    fail "$2: KL $kl from the float model is not below $1"
  note "$FAMILY $2: KL $kl"
}

# same_files A B: every file of directory A is in B, byte for byte.
same_files() {
  local f
  for f in "$1"/*; do expect_same "$f" "$2/$(basename "$f")"; done
}

check_family() {
  FAMILY=$1
  local m=$TMP/$FAMILY q=$TMP/$FAMILY-q
  TOK=$TMP/$FAMILY.u32
  $PY "$ST_TESTS/cli/tiny_family.py" "$FAMILY" "$m" --tokens "$TOK" || fail "tiny_family.py $FAMILY"

  # Float perplexity against the reference.
  local ref got
  ref=$($PY "$ST_TESTS/cli/reference_forward.py" "$m" "$TOK" 16 --stats "$TMP/ref_stats.json") || fail "reference forward"
  eval_json "$m"
  got=$(json_query 'd["perplexity"]')
  python3 -c 'import sys; g,r=map(float,sys.argv[1:]); sys.exit(0 if abs(g/r-1) <= 1e-5 else 1)' "$got" "$ref" ||
    fail "$FAMILY: st-eval perplexity $got is not within 1e-5 of the reference $ref"
  note "$FAMILY: float perplexity $got, reference $ref"

  # Calibration: the reference's linears and input ranges.
  expect_exit 0 "$ST_BIN/st-calibrate" "$m" --data "$TOK" --seq-len 16 -o "$TMP/stats.st" -q
  $PY - "$TMP/stats.st" "$TMP/ref_stats.json" <<'EOF' || fail "$FAMILY: calibration statistics differ from the reference"
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
def one(name):
    b, e = h[name]["data_offsets"]
    return float(np.frombuffer(raw[8 + n + b:8 + n + e], "<f4")[0])
ref = {k: v for k, v in json.load(open(sys.argv[2])).items() if not k.endswith(".gate")}  # routers stay float
ours = {k[:-len(".input_min")] for k in h if k.endswith(".input_min")}
if ours != set(ref):
    sys.exit(f"linears: only st-calibrate {sorted(ours - set(ref))}, only the reference {sorted(set(ref) - ours)}")
for k, (lo, hi) in ref.items():
    for got, want in ((one(k + ".input_min"), lo), (one(k + ".input_max"), hi)):
        if abs(got - want) > 1e-5 * abs(want) + 1e-7:
            sys.exit(f"{k}: {got} vs reference {want}")
EOF

  # Quantization, attention quantization and sparsity: verified, and close to the float model.
  expect_exit 0 "$ST_BIN/st-quant-w8a8" "$m" --stats "$TMP/stats.st" -o "$q" -q
  expect_exit 0 "$ST_BIN/st-verify" "$q" --against "$m" -q
  # MoE families: routed experts W8A8_DYNAMIC by default (vllm-ascend has no static MoE scheme),
  # loaded by MindIE under moe_quantize; everything else static.
  $PY - "$q" <<'EOF2' || fail "$FAMILY: the default static MoE mix"
import json, sys
d = json.load(open(sys.argv[1] + "/quant_model_description.json"))
cfg = json.load(open(sys.argv[1] + "/config.json"))
experts = {v for k, v in d.items() if ".experts." in k and k.endswith(".weight")}
others = {v for k, v in d.items() if k.endswith("_proj.weight") and ".experts." not in k}
if experts:
    assert experts == {"W8A8_DYNAMIC"} and "W8A8" in others, (experts, others)
    assert cfg["quantize"] == "w8a8" and cfg["moe_quantize"] == "w8a8_dynamic", cfg
else:
    assert "moe_quantize" not in cfg and "W8A8_DYNAMIC" not in set(d.values()), cfg
EOF2
  eval_json "$m" --quant "$q"
  kl_below 0.05 "W8A8 static"
  expect_exit 0 "$ST_BIN/st-quant-w8a8" "$m" --dynamic -o "$TMP/dyn" -q
  expect_exit 0 "$ST_BIN/st-verify" "$TMP/dyn" --against "$m" -q
  eval_json "$m" --quant "$TMP/dyn"
  kl_below 0.05 "W8A8_DYNAMIC"
  expect_exit 0 "$ST_BIN/st-quant-w8a8" "$m" --stats "$TMP/stats.st" --fa-quant -o "$TMP/fa" -q
  expect_exit 0 "$ST_BIN/st-verify" "$TMP/fa" --against "$m" -q
  eval_json "$m" --quant "$TMP/fa"
  kl_below 0.05 "W8A8 + FAQuant"
  # A recipe mixing schemes (msModelSlim's mix: attention static, MLPs / experts dynamic).
  local mlp_glob='*mlp*'
  [[ $FAMILY == mixtral ]] && mlp_glob='*experts*'
  expect_exit 0 "$ST_BIN/st-quant-w8a8" "$m" --stats "$TMP/stats.st" --scheme "$mlp_glob=W8A8_DYNAMIC" -o "$TMP/mix" -q
  expect_exit 0 "$ST_BIN/st-verify" "$TMP/mix" --against "$m" -q
  $PY - "$TMP/mix/quant_model_description.json" <<'EOF2' || fail "$FAMILY: the mixed recipe's description"
import json, sys
d = json.load(open(sys.argv[1]))
kinds = {v for k, v in d.items() if k.endswith(".weight")}
assert {"W8A8", "W8A8_DYNAMIC"} <= kinds, kinds
EOF2
  eval_json "$m" --quant "$TMP/mix"
  kl_below 0.05 "W8A8 + W8A8_DYNAMIC recipe"
  expect_exit 0 "$ST_BIN/st-sparsify" "$m" --stats "$TMP/stats.st" --data "$TOK" --seq-len 16 -o "$TMP/sparse" -q
  expect_exit 0 "$ST_BIN/st-verify" "$TMP/sparse" --against "$m" -q
  eval_json "$m" --quant "$TMP/sparse"
  kl_below 1 "W8A8S 50%"

  check_tp 2 "$m" "$q"
}

# check_tp N FLOAT QUANT: TP N parts of the quantized model verify, evaluate as the whole, and
# merge back byte for byte; so do the float model's.
check_tp() {
  local n=$1 m=$2 q=$3 whole
  eval_json "$q"
  whole=$(json_query 'd["perplexity"]')
  rm -rf "$TMP/parts" "$TMP/merged" "$TMP/fparts" "$TMP/fmerged"
  expect_exit 0 "$ST_BIN/st-shard" "$q" --tp "$n" -o "$TMP/parts" -q
  expect_exit 0 "$ST_BIN/st-verify" "$TMP/parts" --against "$m" -q
  eval_json "$TMP/parts"
  expect_eq "$(json_query 'd["perplexity"]')" "$whole" "$FAMILY: perplexity of the TP $n parts"
  expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/parts" -o "$TMP/merged" -q
  same_files "$q" "$TMP/merged"
  expect_exit 0 "$ST_BIN/st-shard" "$m" --tp "$n" -o "$TMP/fparts" -q
  expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/fparts" -o "$TMP/fmerged" -q
  same_files "$m" "$TMP/fmerged"
  note "$FAMILY: TP $n parts verified, evaluated ($whole) and merged byte for byte"
}
