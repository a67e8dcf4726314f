#!/usr/bin/env bash
# One CLI convention (bin/common/cli.hpp): every tool's --help lists the shared flags it should
# have (-o -f -q -j --json --version --progress) and an "Exit status" section; -j takes 0 to 4096
# everywhere; a mistyped flag is named as unknown (with "did you mean") before any missing
# argument; `-o -` on a tool that writes a directory is exit 2 with nothing created; --json
# summaries of what was written; a warning when --samples asks for more sequences than exist.
source "$(dirname "$0")/lib.sh"
L=$ST_FIXTURES/llama-4m-fp16

# The shared flags each tool has: -o/-f where it writes an output, --progress where work is long,
# --json where it has a result or a summary of what was written.
declare -A SHARED=(
  [st-calibrate]="-o -f -q -j --json --version --progress"
  [st-quant-w8a8]="-o -f -q -j --json --version --progress"
  [st-sparsify]="-o -f -q -j --json --version --progress"
  [st-shard]="-o -f -q -j --json --version --progress"
  [st-compress]="-o -f -q -j --json --version --progress"
  [st-cast]="-o -f -q -j --json --version --progress"
  [st-eval]="-q -j --json --version --progress"
  [st-verify]="-q -j --json --version --progress"
  [st-inspect]="-q -j --json --version --progress"
  [st-tokenize]="-o -f -q -j --json --version"
)
declare -A LONG=([-o]=--output [-f]=--force [-q]=--quiet [-j]=--threads)
tools=0
for tool in "$ST_BIN"/st-*; do
  [[ -f $tool && -x $tool ]] || continue
  name=$(basename "$tool")
  [[ -v SHARED[$name] ]] || fail "$name is not in this test's table of shared flags"
  expect_exit 0 "$tool" --help
  for flag in ${SHARED[$name]}; do
    if [[ -v LONG[$flag] ]]; then
      expect_stdout_matches "^  $flag,${LONG[$flag]}( |$)"
    else
      expect_stdout_matches "^  $flag( |$)"
    fi
  done
  # The flags a tool lacks are missing on purpose: none of the shared ones beyond its list.
  for flag in -o -f -q -j --json --progress; do
    [[ " ${SHARED[$name]} " == *" $flag "* ]] && continue
    grep -qE -- "^  $flag[ ,]" "$OUT_FILE" && fail "$name has $flag, not in its list"
  done
  expect_stdout_matches "^Exit status: 0 ok, (1 [^,]+, )?2 error \(bad input, usage, I/O\)\.$"
  expect_exit 0 "$tool" --version
  expect_stdout_matches "^$name \(st-tools\) [0-9]+\.[0-9]+\.[0-9]+"

  # -j: 0 to 4096 everywhere, the same refusal of anything else.
  if [[ " ${SHARED[$name]} " == *" -j "* ]]; then
    for bad in -1 4097; do
      expect_exit 2 "$tool" -j "$bad"
      expect_stderr_contains "$name: error: --threads: Value $bad not in range 0 to 4096"
    done
  fi
  # A mistyped flag is named, with or without the required arguments.
  expect_exit 2 "$tool" --bogus
  expect_stderr_contains "$name: error: unknown option '--bogus'"
  expect_stdout_empty
  expect_exit 2 "$tool" --versoin x y
  expect_stderr_contains "$name: error: unknown option '--versoin'; did you mean '--version'?"
  tools=$((tools + 1))
done
((tools == ${#SHARED[@]})) || fail "$tools tools built, ${#SHARED[@]} in the table"
for tool in st-calibrate st-quant-w8a8 st-sparsify st-shard st-compress st-cast; do
  expect_exit 2 "$ST_BIN/$tool" --frce
  expect_stderr_contains "unknown option '--frce'; did you mean '--force'?"
done
expect_exit 2 "$ST_BIN/st-inspect" --bogus
expect_stderr_contains "unknown option '--bogus'"
grep -q "required" "$ERR_FILE" && fail "a typo reported as a missing argument"
expect_exit 2 "$ST_BIN/st-quant-w8a8" "$L" --dynamc -o "$TMP/x"
expect_stderr_contains "unknown option '--dynamc'; did you mean '--dynamic'?"
expect_exit 2 "$ST_BIN/st-inspect" --filter=x --jsn "$L"
expect_stderr_contains "unknown option '--jsn'; did you mean '--json'?"

note "-o - on a tool that writes a directory: exit 2, nothing created"
mkdir "$TMP/cwd"
cd "$TMP/cwd"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$L" --dynamic -o "$TMP/q" -q
for cmd in "st-shard $TMP/q --tp 2" "st-compress $TMP/q" "st-quant-w8a8 $L --dynamic --max-file-size 1M"; do
  # shellcheck disable=SC2086
  expect_exit 2 "$ST_BIN"/$cmd -o - -f
  expect_stderr_one_line
  expect_stdout_empty
  [[ -z $(ls -A "$TMP/cwd") ]] || fail "$cmd -o - left $(ls -A "$TMP/cwd")"
done
[[ -z $(ls -A "$TMP" | grep -v -e '^cwd$' -e '^q$' -e '^\.last') ]] || fail "left: $(ls -A "$TMP")"
cd "$TMP"

note "'-' is refused where a stream makes no sense (data, statistics, recipes, directories)"
for cmd in "st-calibrate $L --data - -o $TMP/x" "st-calibrate --merge $TMP/a - -o $TMP/x" "st-eval $L --data -" \
  "st-eval $L --data $ST_FIXTURES/data/calib_ids.jsonl --tokenizer -" "st-quant-w8a8 $L --stats - -o $TMP/x" \
  "st-quant-w8a8 $L --dynamic --recipe - -o $TMP/x" "st-sparsify $L --stats - -o $TMP/x" \
  "st-sparsify $L --stats $TMP/s.st --data - -o $TMP/x" "st-compress - -o $TMP/x" "st-shard --merge - -o $TMP/x"; do
  # shellcheck disable=SC2086
  expect_exit 2 "$ST_BIN"/$cmd
  expect_stderr_matches "^st-[a-z0-9-]+: error: [-A-Za-z]+: '-' \\(stdin\\) is no stream here: name the path"
  expect_no_file "$TMP/x"
done

note "--json: a summary of what was written on stdout; refused with -o -"
DATA=(--data "$ST_FIXTURES/data/calib_ids.jsonl" --seq-len 32)
expect_exit 0 "$ST_BIN/st-calibrate" "$L" "${DATA[@]}" --samples 4 -o "$TMP/s.st" --json -q
expect_json
expect_eq "$(json_query '[d["output"], d["samples"], d["tokens"], d["linears"]]')" "[\"$TMP/s.st\", 4, 128, 28]" "st-calibrate --json"
expect_exit 0 "$ST_BIN/st-quant-w8a8" "$L" --stats "$TMP/s.st" -o "$TMP/w8" --json -q
expect_json
expect_eq "$(json_query '[d["output"], d["model_quant_type"], d["linears"], d["linears_float"]]')" \
  "[\"$TMP/w8\", \"W8A8\", {\"W8A8\": 28}, 0]" "st-quant-w8a8 --json"
expect_eq "$(json_query 'all(__import__("os").path.isfile(f) for f in d["files"]) and d["output_bytes"] > 0')" True "files written"
expect_exit 0 "$ST_BIN/st-shard" "$TMP/w8" --tp 2 -o "$TMP/parts" --json -q
expect_json
expect_eq "$(json_query '[d["output"], d["tp"], d["input_tensors"]]')" "[\"$TMP/parts\", 2, $(json_query 'len(d["tensors"])' <("$ST_BIN/st-inspect" --json "$TMP/w8"))]" "st-shard --json"
expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/parts" -o "$TMP/merged" --json -q
expect_eq "$(json_query '[d["merged_parts"], d["layout"]]')" '[2, "quantized"]' "st-shard --merge --json"
expect_exit 0 "$ST_BIN/st-cast" "$L" --to bf16 -o "$TMP/bf16" --json -q
expect_eq "$(json_query '[d["to"], d["tensors"], d["converted"]]')" '["bf16", 39, 39]' "st-cast --json"
for cmd in "st-calibrate $L ${DATA[*]}" "st-quant-w8a8 $L --dynamic" "st-cast $L --to bf16" "st-sparsify $L --stats $TMP/s.st --method magnitude"; do
  # shellcheck disable=SC2086
  expect_exit 2 "$ST_BIN"/$cmd -o - --json
  expect_stderr_contains "--json and -o - would both write stdout"
  expect_stdout_empty
done
expect_exit 2 "$ST_BIN/st-shard" "$TMP/w8" --tp 2 --dry-run --json
expect_stderr_contains "not with --dry-run"

note "--samples beyond the data: a warning, then the sequences there are"
head -n 3 "$ST_FIXTURES/data/calib_ids.jsonl" >"$TMP/three.jsonl"
SHORT=(--data "$TMP/three.jsonl" --seq-len 16 --samples 5)
want="warning: $TMP/three.jsonl: 5 samples asked for, the data holds 3 sequences: using 3"
expect_exit 0 "$ST_BIN/st-calibrate" "$L" "${SHORT[@]}" -o "$TMP/s3.st" -q
expect_stderr_one_line
expect_stderr_contains "st-calibrate: $want"
expect_exit 0 "$ST_BIN/st-eval" "$L" "${SHORT[@]}" -q
expect_stderr_one_line
expect_stderr_contains "st-eval: $want"
expect_exit 0 "$ST_BIN/st-sparsify" "$L" --stats "$TMP/s3.st" "${SHORT[@]}" -o "$TMP/sp" -q
expect_stderr_one_line
expect_stderr_contains "st-sparsify: $want"
expect_exit 0 "$ST_BIN/st-calibrate" "$L" "${SHORT[@]:0:4}" --samples 3 -o "$TMP/s4.st" -q
expect_stderr_empty
note "ok"
