#!/usr/bin/env bash
# Accuracy table: per fixture model and method, perplexity and KL divergence (mean, p99) of the
# quantized model from the float one, measured by st-eval on the full eval set (128 x 512), beside
# the HF reference rows of tests/fixtures/reference/reference_perplexity.json.
#
#   scripts/accuracy-table.sh [BUILD_DIR] [MODEL...]      (default: build, both fp16 fixtures)
#   env: SAMPLES=N (eval sequences, default all 128), THREADS=N, KEEP=DIR (keep outputs there)
# Prints a Markdown table on stdout; progress on stderr.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${1:-$ROOT/build}
[[ $# -gt 0 ]] && shift
MODELS=("$@")
[[ ${#MODELS[@]} -gt 0 ]] || MODELS=(llama-4m-fp16 deepseekv3-mla-6m-fp16)
FX=$ROOT/tests/fixtures
EVAL=$FX/data/eval_512x128.u32
CALIB=$FX/data/calib_ids.jsonl
REF=$FX/reference/reference_perplexity.json
J=(-j "${THREADS:-$(nproc)}")
S=()
[[ -n ${SAMPLES:-} ]] && S=(--samples "$SAMPLES")
for t in st-calibrate st-quant-w8a8 st-sparsify st-eval; do
  [[ -x $B/$t ]] || { echo "accuracy-table: error: '$B/$t' is not built" >&2; exit 2; }
done
if [[ -n ${KEEP:-} ]]; then W=$KEEP; mkdir -p "$W"; else W=$(mktemp -d); trap 'rm -rf "$W"' EXIT; fi

# Method label | reference row | how the output is made ("float" = the float model itself).
METHODS=(
  "float|fp32|float"
  "W8A8 dynamic (per token)|W8A8 dynamic per-token|q --dynamic"
  "W8A8 static, textbook (--anti-outlier none --act-method minmax)|W8A8 static|q --anti-outlier none --act-method minmax"
  "W8A8 static, smoothquant:0.5|W8A8 static + SmoothQuant a=0.5|q --anti-outlier smoothquant:0.5 --act-method minmax"
  "W8A8 static, smoothquant-all:0.5 (norms + up_proj->down_proj)||q --anti-outlier smoothquant-all:0.5 --act-method minmax"
  "W8A8 static, search (alpha per pair)||q --anti-outlier search --act-method minmax"
  "W8A8 static, act-method mse (no smoothing)||q --anti-outlier none --act-method mse"
  "W8A8 static, textbook + fallback 1|W8A8 static, down_proj float|q --anti-outlier none --act-method minmax --fallback 1"
  "**W8A8 static, default** (search + auto)||q"
  "W8A8S 50% magnitude, textbook static|W8A8S 50% magnitude + static|s --method magnitude --anti-outlier none --act-method minmax"
  "W8A8S 50% Wanda, textbook static|W8A8S 50% Wanda + static|s --method wanda --anti-outlier none --act-method minmax"
  "W8A8S 50% magnitude, default static|W8A8S 50% magnitude + static|s --method magnitude"
  "W8A8S 50% Wanda, default static|W8A8S 50% Wanda + static|s --method wanda"
  "W8A8S 25% Wanda, default static|W8A8S 25% Wanda + static|s --method wanda --ratio 0.25"
  "**W8A8S 50%, default** (SparseGPT + default static)||s"
  "W8A8S 50% magnitude, default static, routed experts float|W8A8S 50% magnitude + static|S --method magnitude"
  "W8A8S 50% Wanda, default static, routed experts float|W8A8S 50% Wanda + static|S --method wanda"
  "W8A8S 50% Wanda, textbook static, routed experts float|W8A8S 50% Wanda + static|S --method wanda --anti-outlier none --act-method minmax"
  "**DeepSeek recipe + \`--fa-quant\`** (FAKQuant)||M --fa-quant"
  "all static (\`--scheme '*=W8A8'\`, kv_b_proj float)||M --scheme *=W8A8"
)
# "S" rows run only on MoE models: their routed experts stay float, as in the reference rows. "M"
# rows (st-quant-w8a8 with --stats, like "q") run only on MoE models: the DeepSeek recipe rows.
EXPERTS_FLOAT=(--float 'model.layers.*.mlp.experts.*')

ref() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])).get(sys.argv[2],{}); v=d.get(sys.argv[3]); print("" if v is None else "%.4f" % v)' "$REF" "$1" "$2"; }

echo "| model | method | perplexity | vs float | KL mean | KL p99 | top-1 agree | reference ppl (HF) |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for m in "${MODELS[@]}"; do
  M=$FX/$m
  echo "accuracy-table: $m: calibrating" >&2
  "$B/st-calibrate" "$M" --data "$CALIB" -o "$W/$m.st" -f -q "${J[@]}"
  i=0
  for row in "${METHODS[@]}"; do
    IFS='|' read -r label refrow how <<<"$row"
    i=$((i + 1))
    out=$W/$m-$i
    echo "accuracy-table: $m: $label" >&2
    if [[ $how == [SM]* ]] && ! grep -q '"n_routed_experts"' "$M/config.json"; then continue; fi
    rest=${how:2}
    args=()
    [[ -z $rest ]] || read -r -a args <<<"$rest"
    case $how in
      float)
        "$B/st-eval" "$M" --data "$EVAL" "${S[@]}" --json -q "${J[@]}" >"$W/r.json"
        python3 - "$W/r.json" "$m" "$label" "$(ref "$m" "$refrow")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"| {sys.argv[2]} | {sys.argv[3]} | {d['perplexity']:.4f} | | | | | {sys.argv[4]} |")
PY
        continue ;;
      "q --dynamic") "$B/st-quant-w8a8" "$M" --dynamic -o "$out" -f -q "${J[@]}" ;;
      [qM]*) "$B/st-quant-w8a8" "$M" --stats "$W/$m.st" "${args[@]}" -o "$out" -f -q "${J[@]}" 2>"$W/q.err" || { cat "$W/q.err" >&2; exit 2; } ;;
      s*) "$B/st-sparsify" "$M" --stats "$W/$m.st" "${args[@]}" -o "$out" -f -q "${J[@]}" ;;
      S*) "$B/st-sparsify" "$M" --stats "$W/$m.st" "${EXPERTS_FLOAT[@]}" "${args[@]}" -o "$out" -f -q "${J[@]}" ;;
    esac
    "$B/st-eval" "$M" --quant "$out" --data "$EVAL" "${S[@]}" --json -q "${J[@]}" >"$W/r.json"
    python3 - "$W/r.json" "$m" "$label" "$(ref "$m" "$refrow")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
top1 = d.get("top1_agreement", d.get("top1"))
t = f"{top1:.4f}" if isinstance(top1, (int, float)) else ""
print(f"| {sys.argv[2]} | {sys.argv[3]} | {d['perplexity']:.4f} | {d['perplexity_change_percent']:+.2f} % "
      f"| {d['kl_mean']:.5f} | {d['kl_p99']:.4f} | {t} | {sys.argv[4]} |")
PY
    [[ -n ${KEEP:-} ]] || rm -rf "$out"
  done
done
