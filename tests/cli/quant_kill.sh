#!/usr/bin/env bash
# Killed mid-write, st-quant-w8a8 leaves nothing at OUT: kill -9 leaves only a hidden temporary,
# SIGTERM leaves nothing at all.
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
python3 "$ST_TESTS/../scripts/gen-llama-checkpoint.py" "$TMP/m" --layers 4 --hidden 1024 --intermediate 2816 \
  --vocab 8192 --heads 8 --kv-heads 2 2>/dev/null  # ~90 MB

# kill_mid SIGNAL: start a run, wait for its temporary weight file, kill it. The run must end by
# that signal: one that finished first fails the test (nothing was killed, nothing was proved).
kill_mid() {
  rm -rf "$TMP/out" "$TMP"/.out.st-*
  "$Q" "$TMP/m" --dynamic -o "$TMP/out" -q -j 1 &
  local pid=$! i rc=0
  for ((i = 0; i < 2000; i++)); do
    compgen -G "$TMP/.out.st-tmp-*/.quant_model_weight*" >/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.005
  done
  kill "-$1" $pid 2>/dev/null || true
  wait $pid 2>/dev/null || rc=$?
  [[ $rc != 0 ]] || fail "st-quant-w8a8 finished before SIG$1 reached it: could not kill it in time"
  [[ $rc == $((128 + $(kill -l "$1"))) ]] || fail "st-quant-w8a8 exited $rc, not by SIG$1"
}

kill_mid KILL
expect_no_file "$TMP/out"
kill_mid TERM
expect_no_file "$TMP/out"
left=$(ls -A "$TMP" | grep -c '^\.out\.' || true)
expect_eq "$left" 0 "temporaries left after SIGTERM"
# And a complete run still works afterwards.
expect_exit 0 "$Q" "$TMP/m" --dynamic -o "$TMP/out" -q
expect_file "$TMP/out/quant_model_weight_w8a8_dynamic.safetensors"
