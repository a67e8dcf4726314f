#!/usr/bin/env bash
# kill -9 and SIGTERM at random moments of an -f replacement, during the writes and around the
# commit (held open by the test hook ST_TEST_COMMIT_PAUSE_MS), with the renameat2 exchange and
# with the journaled two renames (ST_TEST_NO_RENAME_EXCHANGE=1): the output is always one complete
# run's, SIGTERM leaves no temporary, and the next run into the output removes whatever kill -9
# left (saying so on stderr). st-eval's merged copies in $TMPDIR go the same way.
# ctest: slow
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
ROUNDS=${ST_SIGNAL_ROUNDS:-40}
python3 "$ST_TESTS/../scripts/gen-llama-checkpoint.py" "$TMP/m" --layers 2 --hidden 512 --intermediate 1408 \
  --vocab 8192 --heads 8 --kv-heads 2 2>/dev/null  # ~30 MB
cd "$TMP"

# Two different complete outputs; every run writes one of them over the other.
config() { if (($1 % 2)); then echo "--dynamic --max-file-size 4M"; else echo "--dynamic"; fi; }
digest() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16; }
# shellcheck disable=SC2046
"$Q" m $(config 0) -o ref0 -q && "$Q" m $(config 1) -o ref1 -q || fail "reference runs"
REF0=$(digest ref0) REF1=$(digest ref1)
[[ $REF0 != "$REF1" ]] || fail "the two configurations give the same output"
cp -r ref0 out
# Anything hidden beside out but its lock file (which a run killed by -9 leaves, and every run takes).
debris() { ls -A "$TMP" | grep -E '^\.out\.' | grep -v '^\.out\.st-lock$' || true; }

# How long one run takes with the commit held 100 ms between steps.
start=$(date +%s%N)
# shellcheck disable=SC2046
ST_TEST_COMMIT_PAUSE_MS=100 "$Q" m $(config 1) -o out -f -q || fail "timing run"
span_ms=$((($(date +%s%N) - start) / 1000000 + 50))
note "one run: ${span_ms} ms; $ROUNDS rounds"

RANDOM=${ST_SIGNAL_SEED:-$$}
note "seed $RANDOM"
removed=0
for ((i = 0; i < ROUNDS; i++)); do
  sig=$([[ $((RANDOM % 2)) == 0 ]] && echo KILL || echo TERM)
  journal=$((RANDOM % 2))
  delay=$((RANDOM % span_ms))
  # shellcheck disable=SC2046
  ST_TEST_COMMIT_PAUSE_MS=100 ST_TEST_NO_RENAME_EXCHANGE=$journal "$Q" m $(config $i) -o out -f -q 2>/dev/null &
  pid=$!
  sleep "$(printf '0.%03d' "$delay")"
  kill -$sig $pid 2>/dev/null || true
  wait $pid 2>/dev/null && rc=0 || rc=$?
  what="round $i: $sig after ${delay} ms (journal $journal, exit $rc)"
  if [[ $sig == TERM ]]; then
    [[ -z $(debris) && ! -e .out.st-lock ]] || fail "$what left $(debris) $(ls -A | grep st-lock)"
    [[ -d out ]] || fail "$what: out is missing"
  elif ((journal == 0)); then
    [[ -d out ]] || fail "$what: out is missing"
  fi
  # The next run into out (here one that stops at "exists": no -f) cleans up first.
  left=$(debris)
  expect_exit 2 "$Q" m --dynamic -o out -q
  expect_stderr_contains "output already exists"
  if [[ -n $left ]]; then
    grep -q "interrupted run" "$ERR_FILE" || fail "$what: $left removed silently"
    removed=$((removed + 1))
  fi
  [[ -z $(debris) && ! -e .out.st-lock ]] || fail "$what: $(debris) left after the next run"
  got=$(digest out)
  [[ $got == "$REF0" || $got == "$REF1" ]] || fail "$what: out is no complete output"
done
note "$removed rounds left temporaries that the next run removed"

note "st-eval: merged part copies in \$TMPDIR"
"$ST_BIN/st-shard" m --tp 2 -o parts -q || fail "shard"
mkdir t
eval_run() {  # exec: the pid is the tool's
  TMPDIR=$TMP/t ST_TEST_COMMIT_PAUSE_MS=2000 exec "$ST_BIN/st-eval" parts --data "$ST_FIXTURES/data/eval_512x128.u32" \
    --samples 1 --seq-len 16 -q "$@"
}
for sig in TERM KILL; do
  eval_run >/dev/null 2>&1 &
  pid=$!
  for ((n = 0; n < 500; n++)); do
    compgen -G "t/st-merged-$pid-*" >/dev/null && break
    sleep 0.01
  done
  compgen -G "t/st-merged-$pid-*" >/dev/null || fail "st-eval made no merged copy in \$TMPDIR"
  kill -$sig $pid
  wait $pid 2>/dev/null || true
  if [[ $sig == TERM ]]; then
    expect_eq "$(ls -A t)" "" "\$TMPDIR after SIGTERM"
  else
    [[ -n $(ls -A t) ]] || fail "kill -9 left nothing to clean (the test no longer tests)"
    TMPDIR=$TMP/t expect_exit 0 "$ST_BIN/st-eval" parts --data "$ST_FIXTURES/data/eval_512x128.u32" --samples 1 --seq-len 16 -q
    expect_stderr_contains "left by an interrupted run (pid $pid)"
    expect_eq "$(ls -A t)" "" "\$TMPDIR after the next run"
  fi
done
