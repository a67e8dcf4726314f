#!/usr/bin/env bash
# st-tokenize: HF's ids for the fixtures' text (file, directory, stdin, threads), plain text,
# --count, --pack, --decode, -o FILE (atomic, never an input, -f to replace; --json), and one-line
# errors for bad tokenizers and bad input.
source "$(dirname "$0")/lib.sh"
M=$ST_FIXTURES/llama-4m-fp16
D=$ST_FIXTURES/data
R=$ST_FIXTURES/reference

# HF tokenizers' ids, whichever way the tokenizer and the text are given.
expect_exit 0 "$ST_BIN/st-tokenize" "$M" "$D/calib_text.jsonl"
expect_same "$OUT_FILE" "$R/calib_text_hf_ids.jsonl"
expect_stderr_empty
expect_exit 0 "$ST_BIN/st-tokenize" --no-special -j 2 "$M/tokenizer.json" "$D/eval_text.jsonl"
expect_same "$OUT_FILE" "$R/eval_text_hf_ids.jsonl"
expect_exit_in "$D/eval_text.jsonl" 0 "$ST_BIN/st-tokenize" "$M" -
expect_same "$OUT_FILE" "$R/eval_text_hf_ids.jsonl"

# Plain text: one output line per input line, the empty one too; CRLF line ends are not text.
printf 'def f(x):\r\n\n    return x\n' >"$TMP/a.txt"
expect_exit 0 "$ST_BIN/st-tokenize" "$M" "$TMP/a.txt"
expect_stdout_lines 3
expect_eq "$(sed -n 2p "$OUT_FILE")" '{"input_ids": []}'
printf 'def f(x):\n' >"$TMP/b.txt"
expect_exit 0 "$ST_BIN/st-tokenize" "$M" "$TMP/b.txt"
expect_eq "$(head -n 1 "$OUT_FILE")" "$(cat "$OUT_FILE")"
first=$(head -n 1 "$OUT_FILE")
expect_exit 0 "$ST_BIN/st-tokenize" "$M" "$TMP/a.txt"
expect_eq "$(head -n 1 "$OUT_FILE")" "$first" "CRLF line"

# --count: tokens per line, then the total.
expect_exit 0 "$ST_BIN/st-tokenize" --count "$M" "$D/eval_text.jsonl"
expect_stdout_lines 17
expect_eq "$(tail -n 1 "$OUT_FILE")" "total 8191"

# --pack 512: documents joined by the eos_token of tokenizer_config.json (<|endoftext|> = 0),
# cut into sequences of exactly 512, the rest dropped.
expect_exit 0 "$ST_BIN/st-tokenize" --pack 512 "$M" "$D/eval_text.jsonl"
expect_stdout_lines 16
expect_stderr_contains "16 documents, 8207 tokens -> 16 sequences of 512 (15 tokens left over, dropped)"
python3 - "$OUT_FILE" "$R/eval_text_hf_ids.jsonl" <<'PY' || fail "--pack is not the documents' ids joined by eos"
import json, sys
packed = [json.loads(l)["input_ids"] for l in open(sys.argv[1])]
docs = [json.loads(l)["input_ids"] + [0] for l in open(sys.argv[2])]
flat = [t for d in docs for t in d]
assert all(len(s) == 512 for s in packed)
assert [t for s in packed for t in s] == flat[:512 * len(packed)]
PY

# --decode: ids back to the text (a byte-level tokenizer without a normalizer round-trips).
expect_exit 0 "$ST_BIN/st-tokenize" --decode "$M" "$R/calib_text_hf_ids.jsonl"
python3 - "$OUT_FILE" "$D/calib_text.jsonl" <<'PY' || fail "--decode does not give the text back"
import json, sys
got = [json.loads(l)["text"] for l in open(sys.argv[1])]
want = [json.loads(l)["text"] for l in open(sys.argv[2])]
assert got == want
PY

# -o FILE: the same bytes, put in place whole; --json says what was written; an existing file
# needs -f, an input is never the output, and a failed run leaves the old file as it was.
expect_exit 0 "$ST_BIN/st-tokenize" "$M" "$D/calib_text.jsonl" -o "$TMP/ids.jsonl" -q
expect_stdout_empty
expect_same "$TMP/ids.jsonl" "$R/calib_text_hf_ids.jsonl"
expect_exit 2 "$ST_BIN/st-tokenize" "$M" "$D/eval_text.jsonl" -o "$TMP/ids.jsonl"
expect_stderr_contains "ids.jsonl': output already exists (use -f to replace it)"
expect_exit 0 "$ST_BIN/st-tokenize" --pack 64 "$M" "$D/calib_text.jsonl" -o "$TMP/ids.jsonl" -f -q --json
python3 - "$OUT_FILE" "$TMP/ids.jsonl" <<'PY' || fail "--json summary does not describe the file"
import json, sys
j = json.load(open(sys.argv[1]))
lines = [json.loads(l)["input_ids"] for l in open(sys.argv[2])]
assert j["output"].endswith("ids.jsonl") and j["mode"] == "pack" and j["seq_len"] == 64, j
assert j["sequences"] == len(lines) and all(len(l) == 64 for l in lines), j
assert j["tokens"] == 64 * j["sequences"] + j["dropped_tokens"] and j["documents"] == 64, j
PY
cp "$TMP/ids.jsonl" "$TMP/ids.before"
printf 'fine\nbad \xff byte\n' >"$TMP/bad_late.txt"
expect_exit 2 "$ST_BIN/st-tokenize" "$M" "$TMP/bad_late.txt" -o "$TMP/ids.jsonl" -f
expect_same "$TMP/ids.jsonl" "$TMP/ids.before"
[[ -z $(find "$TMP" -name '.ids.jsonl*') ]] || fail "a temporary was left: $(ls -a "$TMP")"
cp "$D/calib_text.jsonl" "$TMP/in.jsonl"
expect_exit 2 "$ST_BIN/st-tokenize" "$M" "$TMP/in.jsonl" -o "$TMP/in.jsonl" -f
expect_stderr_contains "the output is the input"
expect_same "$TMP/in.jsonl" "$D/calib_text.jsonl"
expect_exit 2 "$ST_BIN/st-tokenize" "$M" "$D/calib_text.jsonl" --json
expect_stderr_contains "--json and -o - would both write stdout"

# Errors: one line, exit 2, nothing on stdout.
expect_exit 2 "$ST_BIN/st-tokenize" "$TMP/nowhere" "$D/eval_text.jsonl"
expect_stderr_one_line
expect_stderr_contains "nowhere': cannot open"
expect_stdout_empty
echo '{"model": {"type": "WordPiece", "vocab": {}}}' >"$TMP/wp.json"
expect_exit 2 "$ST_BIN/st-tokenize" "$TMP/wp.json" "$D/eval_text.jsonl"
expect_stderr_one_line
expect_stderr_contains "model type 'WordPiece' is not supported"
head -c 1000 "$M/tokenizer.json" >"$TMP/cut.json"
expect_exit 2 "$ST_BIN/st-tokenize" "$TMP/cut.json" "$D/eval_text.jsonl"
expect_stderr_contains "cut.json': not valid JSON"
printf 'fine\nbad \xff byte\n' >"$TMP/bad.txt"
expect_exit 2 "$ST_BIN/st-tokenize" "$M" "$TMP/bad.txt"
expect_stderr_one_line
expect_stderr_contains "bad.txt': line 2: invalid UTF-8 at byte 4"
echo '{"txt": "no text key"}' >"$TMP/nokey.jsonl"
expect_exit 2 "$ST_BIN/st-tokenize" "$M" "$TMP/nokey.jsonl"
expect_stderr_contains "line 1: no \"text\" string"
echo '{"input_ids": [1, 99999]}' | expect_exit_piped 2 "$ST_BIN/st-tokenize" --decode "$M"
expect_stderr_contains "stdin': line 1: token id 99999 is not in the vocabulary"
expect_exit 2 "$ST_BIN/st-tokenize" --pack 8 --count "$M" "$D/eval_text.jsonl"
expect_stderr_contains "do not go together"
# A line longer than 64 MiB is refused, not read whole.
{ head -c 70000000 /dev/zero | tr '\0' a; echo; } >"$TMP/huge.txt"
expect_exit 2 "$ST_BIN/st-tokenize" "$M" "$TMP/huge.txt"
expect_stderr_one_line
expect_stderr_contains "line 1: longer than 64 MiB"
