#!/usr/bin/env bash
# Every command that writes stdout reports a failed write (a full disk: /dev/full) with one line
# and exit 2 instead of exit 0 with the data lost; a reader that closed the pipe stays quiet.
source "$(dirname "$0")/lib.sh"
[[ -w /dev/full ]] || {
  note "no writable /dev/full: skipped"
  exit 0
}
L=$ST_FIXTURES/llama-4m-fp16
CAL=$ST_FIXTURES/data/calib_ids.jsonl
EVAL=$ST_FIXTURES/data/eval_512x128.u32
B=$ST_BIN

# Inputs for the commands below.
"$B/st-calibrate" "$L" --data "$CAL" --samples 2 --seq-len 64 -o "$TMP/stats.st" -q || fail "calibrate"
"$B/st-quant-w8a8" "$L" --dynamic -o "$TMP/q" -q || fail "quantize"
"$B/st-quant-w8a8" "$L" --dynamic -o - -q >"$TMP/q.stream" || fail "quantize to a stream"
"$B/st-shard" - --tp 2 -o "$TMP/sp" -q <"$TMP/q.stream" || fail "shard a stream"
"$B/st-sparsify" "$L" --stats "$TMP/stats.st" --method magnitude -o "$TMP/s" -q || fail "sparsify"

# full CMD...: stdout is /dev/full: exit 2, one line saying so.
full() {
  LAST_CMD="$* >/dev/full"
  set +e
  "$@" </dev/null >/dev/full 2>"$ERR_FILE"
  LAST_RC=$?
  set -e
  [[ $LAST_RC == 2 ]] || fail "expected exit 2, got $LAST_RC"
  expect_stderr_one_line
  expect_stderr_contains "No space left on device"
}

full "$B/st-inspect" "$L"
full "$B/st-inspect" "$L" --json
full "$B/st-inspect" "$L" --stats
full "$B/st-inspect" --diff "$L" "$ST_FIXTURES/llama-4m-bf16"
full "$B/st-verify" "$TMP/q"
full "$B/st-verify" "$TMP/q" --json
full "$B/st-eval" "$L" --data "$EVAL" --samples 1 --seq-len 16 -q
full "$B/st-eval" "$L" --data "$EVAL" --samples 1 --seq-len 16 -q --json
full "$B/st-shard" "$L" --tp 2 --dry-run
full "$B/st-shard" --merge "$TMP/sp" -o - -q
full "$B/st-quant-w8a8" "$L" --dynamic -o - -q
full "$B/st-calibrate" "$L" --data "$CAL" --samples 1 --seq-len 16 -o - -q
full "$B/st-compress" "$TMP/s" -o "$TMP/c" -q --json
full "$B/st-sparsify" "$L" --stats "$TMP/stats.st" --method magnitude -o "$TMP/s2" -q --json
full "$B/st-tokenize" "$L" "$ST_FIXTURES/data/calib_text.jsonl"
full "$B/st-inspect" --help
full "$B/st-verify" --version

# A reader that stops early is no error worth a message.
set +e
"$B/st-inspect" "$L" --stats 2>"$ERR_FILE" | head -c 10 >/dev/null
rc=${PIPESTATUS[0]}
set -e
[[ $rc == 0 || $rc == 2 ]] || fail "st-inspect into a closed pipe: exit $rc"
expect_stderr_empty
