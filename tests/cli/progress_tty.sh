# The progress line (bin/common/progress.hpp) on a terminal: every tool with progress shows
# "WHAT DONE/TOTAL  RATE  ELAPSED[, LEFT]" on stderr and erases it before its summary; nothing
# when stderr is not a terminal or with -q. The terminal is script(1)'s pseudo-terminal.
source "$(dirname "$0")/lib.sh"
command -v script >/dev/null || fail "script(1) (util-linux) is needed"
L=$ST_FIXTURES/llama-4m-fp16
EVAL=$ST_FIXTURES/data/eval_512x128.u32

# expect_line NAME REGEX: the terminal output of NAME has a progress redraw matching REGEX.
expect_line() {
  tr '\r' '\n' <"$TMP/$1.tty" | grep -Eq "$2" || fail "$1: no progress line matching '$2' in: $(tr '\r\033' '\n^' <"$TMP/$1.tty")"
}

note "st-quant-w8a8: tensors, rate, elapsed; the line is erased before the summary"
on_tty quant "$ST_BIN/st-quant-w8a8" "$L" --dynamic -o "$TMP/q"
expect_line quant '^st-quant-w8a8: tensors 39/39  [0-9.]+ (MB|GB)/s  0:[0-9]{2} elapsed'
tr '\r' '\n' <"$TMP/quant.tty" | grep -q $'^\033\\[Kst-quant-w8a8: 28 linears' || fail "quant: the summary does not start on an erased line"

note "st-eval: sequences and tokens/s"
on_tty eval "$ST_BIN/st-eval" "$L" --data "$EVAL" --samples 2 --seq-len 64
expect_line eval '^st-eval: sequences 2/2  [0-9]+ tokens/s  0:[0-9]{2} elapsed'

note "st-verify: weight files read, then linears checked"
on_tty verify "$ST_BIN/st-verify" "$TMP/q" --against "$L"
expect_line verify '^st-verify: weight files read 1'
expect_line verify '^st-verify: linears checked 28/28 '

note "st-calibrate, st-sparsify, st-compress"
on_tty calibrate "$ST_BIN/st-calibrate" "$L" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 2 --seq-len 64 -o "$TMP/s.st"
expect_line calibrate '^st-calibrate: layer passes 8/8  [0-9]+ tokens/s  '  # 4 layers x 2 sequences
on_tty sparsify "$ST_BIN/st-sparsify" "$L" --stats "$TMP/s.st" --method magnitude -o "$TMP/sp"
expect_line sparsify '^st-sparsify: tensors 39/39  '
on_tty compress "$ST_BIN/st-compress" "$TMP/sp" -o "$TMP/sc"
expect_line compress '^st-compress: weights compressed 28/28  '

note "st-shard and st-inspect --stats"
on_tty shard "$ST_BIN/st-shard" "$TMP/q" --tp 2 -o "$TMP/parts"
expect_line shard '^st-shard: tensors [0-9]+/[0-9]+  '
on_tty inspect "$ST_BIN/st-inspect" --stats "$L"
expect_line inspect '^st-inspect: tensors 39/39  '

note "no progress with -q, nor when stderr is not a terminal"
on_tty quiet "$ST_BIN/st-quant-w8a8" "$L" --dynamic -o "$TMP/q" -f -q
grep -q "tensors" "$TMP/quiet.tty" && fail "-q still shows progress: $(cat -v "$TMP/quiet.tty")"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$L" --dynamic -o "$TMP/q" -f
expect_stderr_one_line
expect_stderr_contains "28 linears W8A8_DYNAMIC"
