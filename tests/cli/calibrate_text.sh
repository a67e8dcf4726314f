#!/usr/bin/env bash
# Text --data: st-calibrate on calib_text.jsonl gives the statistics it gives on HF's ids for the
# same lines (one sequence per document); --seq-len packs exactly as st-tokenize --pack; st-eval
# and st-sparsify read text the same way; the statistics name the data and tokenizer by hash.
# ctest: slow
source "$(dirname "$0")/lib.sh"
M=$ST_FIXTURES/llama-4m-fp16
D=$ST_FIXTURES/data
R=$ST_FIXTURES/reference

# same_tensors A B: equal tensors (header without __metadata__, and data bytes).
same_tensors() {
  python3 - "$1" "$2" <<'PY' || fail "statistics differ: $1 $2"
import json, struct, sys
def load(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    h.pop("__metadata__", None)
    return h, raw[8 + n:]
assert load(sys.argv[1]) == load(sys.argv[2])
PY
}
metadata() {
  python3 -c 'import json,struct,sys; r=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",r[:8])[0]; print(json.loads(r[8:8+n])["__metadata__"].get(sys.argv[2], ""))' "$1" "$2"
}

# One sequence per document: the same statistics as HF's ids of the same lines.
expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$D/calib_text.jsonl" --samples 16 -o "$TMP/text.st" -q
expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$R/calib_text_hf_ids.jsonl" --samples 16 -o "$TMP/ids.st" -q
same_tensors "$TMP/text.st" "$TMP/ids.st"
expect_eq "$(metadata "$TMP/text.st" st.stats.tokenizer)" "$(realpath "$M/tokenizer.json")"
expect_eq "$(metadata "$TMP/text.st" st.stats.tokenizer_xxh3)" "$(xxhsum -H3 "$M/tokenizer.json" | sed 's/.* = //')"
expect_eq "$(metadata "$TMP/text.st" st.stats.data_xxh3)" "$(xxhsum -H3 "$D/calib_text.jsonl" | sed 's/.* = //')"
expect_eq "$(metadata "$TMP/text.st" st.stats.pack)" "0"
expect_eq "$(metadata "$TMP/ids.st" st.stats.tokenizer)" ""

# --seq-len packs: the same statistics as the first sequences st-tokenize --pack writes.
"$ST_BIN/st-tokenize" -q --pack 256 "$M" "$D/calib_text.jsonl" >"$TMP/all.jsonl"
head -n 6 "$TMP/all.jsonl" >"$TMP/packed.jsonl"
expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$D/calib_text.jsonl" --seq-len 256 --samples 6 -o "$TMP/p_text.st" -q
expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$TMP/packed.jsonl" -o "$TMP/p_ids.st" -q
same_tensors "$TMP/p_text.st" "$TMP/p_ids.st"
expect_eq "$(metadata "$TMP/p_text.st" st.stats.pack)" "256"

# st-eval: text and HF's ids give the same perplexity; plain text packs the same way.
expect_exit 0 "$ST_BIN/st-eval" "$M" --data "$D/eval_text.jsonl" --samples 3 --json -q
ppl_text=$(json_query 'd["perplexity"]')
expect_exit 0 "$ST_BIN/st-eval" "$M" --data "$R/eval_text_hf_ids.jsonl" --samples 3 --json -q
expect_eq "$(json_query 'd["perplexity"]')" "$ppl_text" "perplexity of text vs ids"
python3 -c 'import json,sys; [print(json.loads(l)["text"].replace("\n", " ")) for l in open(sys.argv[1])]' "$D/eval_text.jsonl" >"$TMP/eval.txt"
"$ST_BIN/st-tokenize" -q --pack 128 "$M" "$TMP/eval.txt" >"$TMP/all.jsonl"
head -n 4 "$TMP/all.jsonl" >"$TMP/eval_packed.jsonl"
expect_exit 0 "$ST_BIN/st-eval" "$M" --data "$TMP/eval.txt" --seq-len 128 --samples 4 --json -q
ppl_text=$(json_query 'd["perplexity"]')
expect_exit 0 "$ST_BIN/st-eval" "$M" --data "$TMP/eval_packed.jsonl" --json -q
expect_eq "$(json_query 'd["perplexity"]')" "$ppl_text" "perplexity of packed .txt vs st-tokenize --pack"

# No tokenizer beside the model: a one-line error naming it; --tokenizer names one.
mkdir "$TMP/bare"
cp "$M/model.safetensors" "$M/config.json" "$TMP/bare/"
expect_exit 2 "$ST_BIN/st-eval" "$TMP/bare" --data "$D/eval_text.jsonl" --samples 1 -q
expect_stderr_one_line
expect_stderr_contains "bare/tokenizer.json': cannot open"
expect_stderr_contains "--tokenizer"
expect_exit 0 "$ST_BIN/st-eval" "$TMP/bare" --tokenizer "$M/tokenizer.json" --data "$D/eval_text.jsonl" --samples 1 -q
# Text that packs into no whole sequence; a one-token document on its own.
printf 'a b\n' >"$TMP/short.txt"
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/short.txt" --seq-len 64 -q
expect_stderr_contains "the text holds 3 tokens, fewer than one 64-token sequence"
printf 'def f(x):\nx\n' >"$TMP/one.txt"
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/one.txt" -q
expect_stderr_contains "one.txt': line 2: 1 token; a sequence needs at least 2"

# st-sparsify's default (SparseGPT on the data the statistics name) reads the text again, with
# its tokenizer: the same model as SparseGPT on HF's ids of those lines.
expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/text.st" --ratio 0.25 -o "$TMP/sp_text"
expect_stderr_contains "pruned by sparsegpt"
# The weight file records the method, its parameters and the data it ran on.
W=$TMP/sp_text/quant_model_weight_w8a8s.safetensors
expect_eq "$(metadata "$W" st.sparsify.method)/$(metadata "$W" st.sparsify.pattern)" "sparsegpt/0.250000"
expect_eq "$(metadata "$W" st.sparsify.damp)/$(metadata "$W" st.sparsify.block)" "0.010000/128"
expect_eq "$(metadata "$W" st.sparsify.data)" "calib_text.jsonl"
expect_eq "$(metadata "$W" st.sparsify.data_xxh3)" "$(metadata "$TMP/text.st" st.stats.data_xxh3)"
expect_eq "$(metadata "$W" st.sparsify.tokenizer_xxh3)" "$(metadata "$TMP/text.st" st.stats.tokenizer_xxh3)"
expect_eq "$(metadata "$W" st.sparsify.sequences)/$(metadata "$W" st.sparsify.pack)" "16/0"
expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/text.st" --ratio 0.25 --method sparsegpt \
  --data "$R/calib_text_hf_ids.jsonl" --samples 16 -o "$TMP/sp_ids" -q
# (Tensors equal; __metadata__ names different data.)
same_tensors "$TMP/sp_text/quant_model_weight_w8a8s.safetensors" "$TMP/sp_ids/quant_model_weight_w8a8s.safetensors"
# Data changed or gone since calibration: the default method does not change, it stops with one
# line naming the statistics, the data and the two ways on; nothing is written.
cp "$D/calib_text.jsonl" "$TMP/calib.jsonl"
expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$TMP/calib.jsonl" --samples 2 --seq-len 64 -o "$TMP/c.st" -q
echo '{"text": "changed"}' >>"$TMP/calib.jsonl"
expect_exit 2 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/c.st" --ratio 0.25 -o "$TMP/sp_changed"
expect_stderr_one_line
expect_stderr_contains "st-sparsify: error: '$TMP/c.st': the calibration data these statistics name, '$(realpath "$TMP/calib.jsonl")', has changed"
expect_stderr_contains ": give --data FILE (the calibration data), or --method wanda to prune without it"
expect_no_file "$TMP/sp_changed"
rm "$TMP/calib.jsonl"
expect_exit 2 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/c.st" --ratio 0.25 -o "$TMP/sp_changed"
expect_stderr_one_line
expect_stderr_contains "calib.jsonl', does not exist: give --data FILE"
expect_no_file "$TMP/sp_changed"
# The tokenizer the statistics name, changed.
cp -r "$M" "$TMP/m2"
expect_exit 0 "$ST_BIN/st-calibrate" "$TMP/m2" --data "$D/calib_text.jsonl" --samples 2 --seq-len 64 -o "$TMP/t.st" -q
echo >>"$TMP/m2/tokenizer.json"
expect_exit 2 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/t.st" --ratio 0.25 -o "$TMP/sp_changed"
expect_stderr_one_line
expect_stderr_contains "the tokenizer these statistics name, '$(realpath "$TMP/m2/tokenizer.json")', has changed"
# Wanda needs no data and is unaffected.
expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/c.st" --ratio 0.25 --method wanda -o "$TMP/sp_changed"
expect_stderr_contains "pruned by wanda"
