#!/usr/bin/env bash
# Two runs into one output: the second fails at once with one "in use" line (however it spells
# the output, with -f too) and the first one's output is complete; without the lock both used to
# exit 0, the later silently replacing the other's output.
# ctest: slow
source "$(dirname "$0")/lib.sh"
L=$ST_FIXTURES/llama-4m-fp16
Q=$ST_BIN/st-quant-w8a8
cd "$TMP"

# start_slow NAME CMD...: runs CMD in the background, its commit held 1.5 s (test hook,
# libst/format/output.hpp), and waits until it holds the output's lock. Sets SLOW_PID.
start_slow() {
  local lock=$TMP/.$1.st-lock i
  shift
  ST_TEST_COMMIT_PAUSE_MS=1500 "$@" 2>"$TMP/first.err" &
  SLOW_PID=$!
  for ((i = 0; i < 1000; i++)); do
    [[ -e $lock ]] && return 0
    sleep 0.01
  done
  fail "the first run never took the lock $lock"
}

mkdir x
for second in out ./out "$TMP/out/" x/../out; do
  rm -rf out
  start_slow out "$Q" "$L" --dynamic -o out -q
  expect_exit 2 "$Q" "$L" --dynamic -o "$second" -q -f
  expect_stderr_one_line
  expect_stderr_contains "'$second': the output is in use by another run (pid $SLOW_PID)"
  wait $SLOW_PID || fail "the first run failed: $(cat "$TMP/first.err")"
  expect_exit 0 "$ST_BIN/st-verify" out -q
  expect_eq "$(ls -A "$TMP" | grep -c '\.st-' || true)" 0 "temporaries or locks left"
done

# A file output (statistics) and a directory output of another tool, the same way.
start_slow stats.st "$ST_BIN/st-calibrate" "$L" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 1 -o stats.st -q
expect_exit 2 "$ST_BIN/st-calibrate" "$L" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 1 -o stats.st -q
expect_stderr_contains "in use by another run"
wait $SLOW_PID || fail "the first run failed: $(cat "$TMP/first.err")"
expect_exit 0 "$ST_BIN/st-inspect" stats.st
start_slow parts "$ST_BIN/st-shard" "$L" --tp 2 -o parts -q
expect_exit 2 "$ST_BIN/st-shard" "$L" --tp 2 -o parts -q
expect_stderr_contains "in use by another run"
wait $SLOW_PID || fail "the first run failed: $(cat "$TMP/first.err")"
expect_exit 0 "$ST_BIN/st-verify" parts -q

# Once the first has finished, the next run is an ordinary one: exists without -f, replaced with it.
expect_exit 2 "$Q" "$L" --dynamic -o out -q
expect_stderr_contains "output already exists"
expect_exit 0 "$Q" "$L" --dynamic -o out -q -f
