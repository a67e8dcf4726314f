#!/usr/bin/env bash
# The time left on a terminal: every long phase of st-calibrate (the layer passes: every
# sequence through one layer, then the next), st-quant-w8a8 (the default
# static quantization: smoothing search, then the tensors), st-sparsify (smoothing, SparseGPT's
# layer passes, the pruned tensors) and st-eval (layer passes, then the
# head's logits per sequence) shows its total from its
# first line and ", M:SS left" within 3 s of its start, on script(1)'s pseudo-terminal. The model
# is generated (8 layers, hidden 512) and the tools run on one thread, so that each phase lasts.
# --progress=json gives the same as one JSON object per line on stderr, terminal or not.
source "$(dirname "$0")/lib.sh"
command -v script >/dev/null || fail "script(1) (util-linux) is needed"
M=$TMP/model
python3 "$ST_TESTS/../scripts/gen-llama-checkpoint.py" "$M" --layers 8 --hidden 512 --intermediate 1408 \
  --vocab 8192 --heads 8 --kv-heads 4 2>/dev/null || fail "cannot generate the model"
DATA=(--data "$ST_FIXTURES/data/calib_ids.jsonl" --seq-len 64 --samples 24)

# eta_early NAME TOOL WHAT: the phase WHAT of NAME's terminal output showed its total from its first
# redraw, and its first redraw with the time left came at most 3 s after the phase started.
eta_early() {
  local lines
  lines=$(tr '\r' '\n' <"$TMP/$1.tty" | sed 's/\x1b\[K//g' | grep -E "^$2: $3 [0-9]+" || true)
  [[ -n $lines ]] || fail "$1: no '$3' progress in: $(tr '\r\033' '\n^' <"$TMP/$1.tty" | head -c 2000)"
  head -n 1 <<<"$lines" | grep -Eq "^$2: $3 [0-9]+/[0-9]+" || fail "$1: '$3' starts without its total: $(head -n 1 <<<"$lines")"
  local first
  first=$(grep -E ' left$' <<<"$lines" | head -n 1)
  [[ -n $first ]] || fail "$1: '$3' never shows the time left: $(tr '\n' '|' <<<"$lines" | head -c 1500)"
  [[ $first =~ ([0-9]+):([0-9]{2})\ elapsed ]] || fail "$1: no elapsed time in '$first'"
  ((10#${BASH_REMATCH[1]} * 60 + 10#${BASH_REMATCH[2]} <= 3)) || fail "$1: '$3' shows the time left only at '$first'"
  note "$1: $first"
}

note "st-calibrate"
on_tty calibrate "$ST_BIN/st-calibrate" "$M" "${DATA[@]}" -o "$TMP/stats.st" -j 1
eta_early calibrate st-calibrate "layer passes"

note "st-quant-w8a8, the default static quantization"
on_tty quant "$ST_BIN/st-quant-w8a8" "$M" --stats "$TMP/stats.st" -o "$TMP/q" -j 1
eta_early quant st-quant-w8a8 "smoothing pairs"
eta_early quant st-quant-w8a8 tensors

note "st-sparsify, SparseGPT (the default) on the data the statistics name"
on_tty sparsify "$ST_BIN/st-sparsify" "$M" --stats "$TMP/stats.st" -o "$TMP/sp" -j 1
eta_early sparsify st-sparsify "layer passes"
eta_early sparsify st-sparsify "smoothing pairs"
eta_early sparsify st-sparsify tensors

note "st-eval"
on_tty eval "$ST_BIN/st-eval" "$M" "${DATA[@]}" -j 1
eta_early eval st-eval "layer passes"
eta_early eval st-eval sequences

note "--progress=json: JSON lines on stderr, not a terminal, even with -q"
expect_exit 0 "$ST_BIN/st-calibrate" "$M" "${DATA[@]}" -o "$TMP/s2.st" -j 1 --progress=json -q
python3 - "$ERR_FILE" <<'PY' || fail "--progress=json lines: $(head -c 600 "$ERR_FILE")"
import json, sys
every = [json.loads(l) for l in open(sys.argv[1])]
assert all(r["tool"] == "st-calibrate" for r in every)
phases = [r["what"] for i, r in enumerate(every) if i == 0 or every[i - 1]["what"] != r["what"]]
assert phases == ["layer passes"], phases
rows = [r for r in every if r["what"] == "layer passes"]
assert all(r["total"] == 8 * 24 for r in rows), rows
assert rows[0]["done"] == 0 and rows[0]["left_s"] is None
assert rows[-1]["done"] == 8 * 24 and rows[-1]["unit"] == "tokens" and rows[-1]["amount"] == 8 * 24 * 64
assert any(r["left_s"] is not None for r in rows), "no line with the time left"
assert all(set(r) == {"tool", "what", "done", "total", "amount", "unit", "elapsed_s", "rate", "left_s"} for r in every)
assert all(r["left_s"] is None or r["left_s"] >= 0 for r in rows)
PY
expect_exit 2 "$ST_BIN/st-calibrate" "$M" "${DATA[@]}" -o "$TMP/s3.st" --progress=xml
expect_stderr_contains "--progress: xml not in {auto,json}"
expect_no_file "$TMP/s3.st"
note "ok"
