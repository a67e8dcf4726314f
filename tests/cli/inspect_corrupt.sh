#!/usr/bin/env bash
# Every file of the malformed corpus (tests/fixtures/corrupt) is refused: exit 2, one line on
# stderr naming the file and the rule it breaks (its README line), nothing on stdout, no crash and
# no hang -- as a path, inside an HF directory, as a stream on stdin, and on either side of --diff.
source "$(dirname "$0")/lib.sh"
I=$ST_BIN/st-inspect
C=$ST_FIXTURES/corrupt
n=0
for f in "$C"/*.safetensors; do
  name=$(basename "$f")
  # README: NAME: FAULT: "MESSAGE FRAGMENT": what it breaks. The fragment names the rule.
  line=$(grep "^$name: " "$C/README") || fail "$name is not listed in $C/README"
  rule=${line#*: \"}
  rule=${rule%%\": *}
  expect_exit 2 timeout 20 "$I" "$f"
  expect_stderr_one_line
  expect_stderr_matches "^st-inspect: error: '$f': "
  expect_stderr_contains "$rule"
  expect_stdout_empty

  expect_exit 2 timeout 20 "$I" --json --stats "$f"
  expect_stderr_one_line
  expect_stdout_empty

  mkdir "$TMP/d"
  cp "$f" "$TMP/d/model.safetensors"
  expect_exit 2 timeout 20 "$I" "$TMP/d"
  expect_stderr_contains "'$TMP/d/model.safetensors'"
  rm -r "$TMP/d"

  # Through a pipe (non-seekable): listing and --stats read the stream through to its end.
  cat "$f" | expect_exit_piped 2 timeout 20 "$I" -
  expect_stderr_one_line
  expect_stderr_contains "'<stdin>'"
  expect_stdout_empty
  cat "$f" | expect_exit_piped 2 timeout 20 "$I" --stats -
  expect_stderr_contains "'<stdin>'"

  expect_exit 2 timeout 20 "$I" --diff "$ST_FIXTURES/llama-4m-fp16" "$f"
  expect_stderr_one_line
  expect_stderr_contains "'$f'"
  n=$((n + 1))
done
((n >= 24)) || fail "only $n corrupt fixtures found in $C"
# The README lists no file that is missing.
while IFS= read -r line; do
  [[ $line == *.safetensors:* ]] || continue
  expect_file "$C/${line%%: *}"
done <"$C/README"

# A corrupt description in a quantized directory is named too.
mkdir "$TMP/q"
cp "$ST_FIXTURES/llama-4m-fp16/model.safetensors" "$TMP/q/quant_model_weight_w8a8.safetensors"
echo '{"model_quant_type": "W8A8", ' >"$TMP/q/quant_model_description.json"
expect_exit 2 "$I" "$TMP/q"
expect_stderr_one_line
expect_stderr_contains "'$TMP/q/quant_model_description.json'"
note "$n corrupt files refused"
