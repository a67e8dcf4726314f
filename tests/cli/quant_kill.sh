#!/usr/bin/env bash
# Killed mid-write, st-quant-w8a8 leaves nothing at OUT: kill -9 leaves only a hidden temporary,
# SIGTERM leaves nothing at all.
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
python3 "$ST_TESTS/../scripts/gen-llama-checkpoint.py" "$TMP/m" --layers 4 --hidden 1024 --intermediate 2816 \
  --vocab 8192 --heads 8 --kv-heads 2 2>/dev/null  # ~90 MB

# kill_mid SIGNAL: start a run, wait for its temporary directory, kill it. Returns 1 when the run
# finished before it could be killed (machine too fast for this test).
kill_mid() {
  rm -rf "$TMP/out" "$TMP"/.out.st-*
  "$Q" "$TMP/m" --dynamic -o "$TMP/out" -q -j 1 &
  local pid=$! i
  for ((i = 0; i < 2000; i++)); do
    compgen -G "$TMP/.out.st-tmp-*/.quant_model_weight*" >/dev/null && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.005
  done
  kill "-$1" $pid 2>/dev/null || { wait $pid || true; return 1; }
  wait $pid 2>/dev/null || true
  return 0
}

if kill_mid KILL; then
  expect_no_file "$TMP/out"
else
  note "run finished before kill -9: skipped"
fi
if kill_mid TERM; then
  expect_no_file "$TMP/out"
  left=$(ls -A "$TMP" | grep -c '^\.out\.' || true)
  expect_eq "$left" 0 "temporaries left after SIGTERM"
else
  note "run finished before SIGTERM: skipped"
fi
# And a complete run still works afterwards.
expect_exit 0 "$Q" "$TMP/m" --dynamic -o "$TMP/out" -q
expect_file "$TMP/out/quant_model_weight_w8a8_dynamic.safetensors"
