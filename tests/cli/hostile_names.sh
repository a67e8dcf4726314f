#!/usr/bin/env bash
# Names that come from files are plain names inside their directory (libst/format/names.hpp):
# a side file "st.file.../../x" in __metadata__, an index weight_map entry, a .xxh3 line naming
# another path or a FIFO / device. Every tool refuses with one line naming the file and the rule
# (exit 2; st-verify reports a problem, exit 1), never writes outside its output, never hangs.
source "$(dirname "$0")/lib.sh"
FAULT="python3 $ST_TESTS/cli/verify_faults.py"
FP16=$ST_FIXTURES/llama-4m-fp16
W=quant_model_weight_w8a8_dynamic.safetensors

mkdir -p "$TMP/w/a/b"
nothing_escaped() {  # no file named x (or pwned) was created anywhere under $TMP
  [[ -z $(find "$TMP" -name x -o -name pwned) ]] || fail "a side file escaped its output: $(find "$TMP" -name x -o -name pwned)"
}
for key in "st.file.../../x" "st.file./$TMP/pwned" "st.file.." "st.file.a/x"; do
  $FAULT meta_set "$FP16/model.safetensors" "$key" "written outside" "$TMP/w/evil.safetensors"
  $FAULT meta_set "$TMP/w/evil.safetensors" st.file.config.json "$(cat "$FP16/config.json")"

  note "st-quant-w8a8 refuses $key (file and stream)"
  expect_exit 2 "$ST_BIN/st-quant-w8a8" "$TMP/w/evil.safetensors" --dynamic -o "$TMP/w/a/b/out"
  expect_stderr_one_line
  expect_stderr_contains "'$TMP/w/evil.safetensors': side file in __metadata__"
  expect_stderr_contains "is not a plain file name"
  expect_no_file "$TMP/w/a/b/out"
  expect_exit_in "$TMP/w/evil.safetensors" 2 "$ST_BIN/st-quant-w8a8" - --dynamic -o "$TMP/w/a/b/out"
  expect_stderr_one_line
  expect_stderr_contains "'<stdin>': side file in __metadata__"
  expect_exit_in "$TMP/w/evil.safetensors" 2 "$ST_BIN/st-quant-w8a8" - --dynamic -o -
  expect_stdout_empty

  note "st-shard and st-sparsify refuse $key"
  expect_exit 2 "$ST_BIN/st-shard" "$TMP/w/evil.safetensors" --tp 2 -o "$TMP/w/a/b/parts"
  expect_stderr_one_line
  expect_stderr_contains "is not a plain file name"
  expect_no_file "$TMP/w/a/b/parts"
  [[ -f $TMP/stats.st ]] || python3 "$ST_TESTS/cli/shard_tool.py" fake-stats "$FP16" "$TMP/stats.st"
  expect_exit 2 "$ST_BIN/st-sparsify" "$TMP/w/evil.safetensors" --stats "$TMP/stats.st" --method magnitude \
    -o "$TMP/w/a/b/sparse"
  expect_stderr_one_line
  expect_stderr_contains "is not a plain file name"

  note "st-verify reports $key as a problem"
  expect_exit 1 "$ST_BIN/st-verify" "$TMP/w/evil.safetensors" -q
  expect_stdout_contains "side file in __metadata__"
  nothing_escaped
done

note "an index weight_map entry must name a file beside the index"
python3 "$ST_TESTS/cli/shard_tool.py" split-hf "$FP16" "$TMP/hf" 2
for target in "../model-00001-of-00002.safetensors" "/etc/passwd" "."; do
  python3 - "$TMP/hf/model.safetensors.index.json" "$target" <<'PY'
import json, sys
p, t = sys.argv[1], sys.argv[2]
d = json.load(open(p))
d["weight_map"]["lm_head.weight"] = t
json.dump(d, open(p, "w"))
PY
  expect_exit 2 "$ST_BIN/st-inspect" "$TMP/hf"
  expect_stderr_one_line
  expect_stderr_contains "'$TMP/hf/model.safetensors.index.json': tensor 'lm_head.weight': weight_map: "
  expect_stderr_contains "is not a plain file name"
  expect_stdout_empty
done

note ".xxh3 lines naming other paths, FIFOs or devices are problems, never opened"
"$ST_BIN/st-quant-w8a8" "$FP16" --dynamic -o "$TMP/q" -q
expect_file "$TMP/q/$W.xxh3"
good=$(cat "$TMP/q/$W.xxh3")
mkfifo "$TMP/q/fifo"
ln -s /dev/zero "$TMP/q/zero"
for name in /dev/zero /etc/shadow ../q/$W fifo zero; do
  { echo "$good"; echo "XXH3 ($name) = 0123456789abcdef"; } >"$TMP/q/$W.xxh3"
  expect_exit 1 timeout 20 "$ST_BIN/st-verify" "$TMP/q" -q
  expect_stdout_contains "integrity: '$TMP/q/$W.xxh3': "
  case $name in
    fifo | zero) expect_stdout_contains "names '$name', which cannot be read: not a regular file" ;;
    *) expect_stdout_contains "is not a plain file name" ;;
  esac
  expect_stdout_not_contains "the file hashes to"
done
