#!/usr/bin/env bash
# The output policy as the tools apply it: an output that is, contains or lies inside an input is
# refused in every spelling, with -f too, and the input is untouched; '-' is stdout only for a
# stream and never a terminal; errors name the -o the user typed, never the hidden temporary; side
# files keep their permission bits (symlinks followed).
source "$(dirname "$0")/lib.sh"
L=$ST_FIXTURES/llama-4m-fp16
CAL=$ST_FIXTURES/data/calib_ids.jsonl

# refused CODE-TEXT CMD...: exit 2, one line naming the rule.
refused() {
  local want=$1
  shift
  expect_exit 2 "$@"
  expect_stderr_one_line
  expect_stderr_contains "$want"
}
# same_tree A B: identical file lists and bytes.
same_tree() { diff -r -q -- "$1" "$2" >/dev/null || fail "trees differ: $1 $2"; }

cp -r "$L" "$TMP/m"
"$ST_BIN/st-calibrate" "$TMP/m" --data "$CAL" --samples 2 --seq-len 64 -o "$TMP/stats.st" -q || fail "calibrate"

note "st-calibrate: the statistics never land in the model"
refused "the output lies inside the input '$TMP/m'" "$ST_BIN/st-calibrate" "$TMP/m" --data "$CAL" --samples 2 -o "$TMP/m/model.safetensors" -f
refused "the output lies inside the input" "$ST_BIN/st-calibrate" "$TMP/m" --data "$CAL" --samples 2 -o "$TMP/m/stats.safetensors"
refused "the output is the input '$CAL'" "$ST_BIN/st-calibrate" "$TMP/m" --data "$CAL" --samples 2 -o "$CAL" -f
same_tree "$L" "$TMP/m"

note "st-quant-w8a8 / st-sparsify: the output directory holding the model"
mkdir -p "$TMP/X"
cp -r "$L" "$TMP/X/model"
ln -s X "$TMP/LX"
for out in "$TMP/X" "$TMP/X/" "$TMP/X/model/.." "$TMP/LX/model/.." "$TMP/X/model" "$TMP/X/model/sub"; do
  refused "the output" "$ST_BIN/st-quant-w8a8" "$TMP/X/model" --dynamic -o "$out" -f
  expect_stderr_contains "'$out': the output"
  refused "the output" "$ST_BIN/st-sparsify" "$TMP/X/model" --stats "$TMP/stats.st" --method magnitude -o "$out" -f
done
refused "the output contains the input '$TMP/LX/model'" "$ST_BIN/st-quant-w8a8" "$TMP/LX/model" --dynamic -o "$TMP/X" -f
refused "the output is the input '$TMP/stats.st'" "$ST_BIN/st-quant-w8a8" "$TMP/X/model" --stats "$TMP/stats.st" -o "$TMP/stats.st" -f
same_tree "$L" "$TMP/X/model"
expect_eq "$(ls -A "$TMP/X")" model "nothing beside the model"

note "st-shard / st-compress: parts are never replaced by their own output"
"$ST_BIN/st-shard" "$L" --tp 2 -o "$TMP/P" -q || fail "shard"
cp -r "$TMP/P" "$TMP/P.orig"
ln "$TMP/P/part0-of-2/model.safetensors" "$TMP/hardlink.safetensors"
refused "the output lies inside the input '$TMP/P'" "$ST_BIN/st-shard" --merge "$TMP/P" -o "$TMP/P/part0-of-2/model.safetensors" -f
refused "the output lies inside the input" "$ST_BIN/st-shard" --merge "$TMP/P/" -o "$TMP/P/part0-of-2/../merged" -f
refused "the output is the input" "$ST_BIN/st-shard" --merge "$TMP/P" -o "$TMP/P" -f
refused "the output contains the input" "$ST_BIN/st-shard" --merge "$TMP/P" -o "$TMP" -f
refused "the output is the input" "$ST_BIN/st-shard" "$TMP/P/part0-of-2" --tp 2 -o "$TMP/P/part0-of-2/" -f
refused "the output is the input" "$ST_BIN/st-shard" "$TMP/hardlink.safetensors" --tp 2 -o "$TMP/P/part0-of-2/model.safetensors" -f
same_tree "$TMP/P.orig" "$TMP/P"
"$ST_BIN/st-sparsify" "$L" --stats "$TMP/stats.st" --method magnitude -o "$TMP/S" -q || fail "sparsify"
"$ST_BIN/st-shard" "$TMP/S" --tp 2 -o "$TMP/SP" -q || fail "shard W8A8S"
"$ST_BIN/st-compress" "$TMP/SP" -o "$TMP/SC" -q || fail "compress"
cp -r "$TMP/SP" "$TMP/SP.orig"
cp -r "$TMP/SC" "$TMP/SC.orig"
for out in "$TMP/SP" "$TMP/SP/" "$TMP/SP/part1-of-2/.." "$TMP/SP/part0-of-2" "$TMP"; do
  refused "the output" "$ST_BIN/st-compress" "$TMP/SP" -o "$out" -f
  refused "the output" "$ST_BIN/st-compress" "$TMP/SC" -d -o "${out/SP/SC}" -f
done
refused "the output contains the input '$TMP/SP/part0-of-2'" "$ST_BIN/st-compress" "$TMP/SP/part0-of-2" -o "$TMP/SP" -f
refused "the output contains the input" "$ST_BIN/st-compress" "$TMP/SC/part1-of-2" -d -o "$TMP/SC/" -f
same_tree "$TMP/SP.orig" "$TMP/SP"
same_tree "$TMP/SC.orig" "$TMP/SC"

note "'-' is stdout for a stream only"
cd "$TMP"
refused "not a stream for stdout" "$ST_BIN/st-shard" "$L" --tp 2 -o -
refused "not a stream for stdout" "$ST_BIN/st-compress" "$TMP/SP" -o -
refused "not a stream for stdout" "$ST_BIN/st-compress" "$TMP/SC" -d -o - -f
expect_no_file "$TMP/-"
expect_exit 0 "$ST_BIN/st-shard" "$L" --tp 2 -o ./- -q  # a folder named '-' when asked for plainly
expect_file "$TMP/-/part1-of-2/model.safetensors"
cd - >/dev/null
# Binary output to a terminal: refused before any work (stdout_on_tty CMD...: only stdout is a pty).
stdout_on_tty() {
  python3 - "$@" <<'EOF'
import os, pty, subprocess, sys
m, s = pty.openpty()
r = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=s, stderr=subprocess.PIPE)
os.close(s)
sys.stderr.write(r.stderr.decode())
sys.exit(r.returncode)
EOF
}
for cmd in "$ST_BIN/st-quant-w8a8 $L --dynamic -o -" "$ST_BIN/st-calibrate $L --data $CAL --samples 1 -o -" \
  "$ST_BIN/st-shard --merge $TMP/P -o -"; do
  # shellcheck disable=SC2086
  run_cmd stdout_on_tty $cmd </dev/null
  expect_eq "$LAST_RC" 2 "exit of '$cmd' on a terminal"
  expect_stderr_one_line
  expect_stderr_contains "to a terminal"
done

note "errors name the output as typed, not its temporary"
# A write that fails inside the output (a file size limit: EFBIG, not the signal).
cd "$TMP"
(trap '' XFSZ && ulimit -f 1024 && exec "$ST_BIN/st-quant-w8a8" "$TMP/m" --dynamic -o q/ -q) 2>"$ERR_FILE" && fail "a write past the size limit succeeded"
[[ $(wc -l <"$ERR_FILE") == 1 ]] || fail "expected one line: $(cat "$ERR_FILE")"
grep -qF "'q/quant_model_weight_w8a8_dynamic.safetensors': write failed: File too large" "$ERR_FILE" || fail "names: $(cat "$ERR_FILE")"
(trap '' XFSZ && ulimit -f 16 && exec "$ST_BIN/st-calibrate" "$TMP/m" --data "$CAL" --samples 1 -o s.st -q) 2>"$ERR_FILE" && fail "a write past the size limit succeeded"
grep -qF "'s.st': write failed: File too large" "$ERR_FILE" || fail "names: $(cat "$ERR_FILE")"
expect_eq "$(ls -A "$TMP" | grep -c '\.st-' || true)" 0 "temporaries left in $TMP"
cd - >/dev/null

note "side files keep their permission bits, through symlinks"
cp -r "$L" "$TMP/h"
mv "$TMP/h/tokenizer.json" "$TMP/blob"
chmod 600 "$TMP/blob"
ln -s ../blob "$TMP/h/tokenizer.json"
chmod 640 "$TMP/h/tokenizer_config.json"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$TMP/h" --dynamic -o "$TMP/hq" -q
expect_exit 0 "$ST_BIN/st-shard" "$TMP/h" --tp 2 -o "$TMP/hs" -q
expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/hs" -o "$TMP/hm" -q
for f in "$TMP/hq/tokenizer.json" "$TMP/hs/part1-of-2/tokenizer.json" "$TMP/hm/tokenizer.json"; do
  [[ -f $f && ! -L $f ]] || fail "$f is not a regular file"
  expect_eq "$(stat -c %a "$f")" 600 "mode of $f"
  expect_same "$TMP/blob" "$f"
done
expect_eq "$(stat -c %a "$TMP/hq/tokenizer_config.json")" 640 "mode of tokenizer_config.json"
expect_eq "$(stat -c %a "$TMP/hq/config.json")" 644 "mode of config.json"
