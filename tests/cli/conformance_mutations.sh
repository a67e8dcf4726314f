#!/usr/bin/env bash
# Every consumer rule can fail: tests/conformance/mutations.py breaks a copy of an output once per rule
# (a tensor dropped, a dtype or shape changed, a description or config key altered, the layout moved)
# and requires check_consumers.py to name the break with that rule.
# ctest: slow
source "$(dirname "$0")/lib.sh"
B=$ST_BIN
CONF=$ST_TESTS/conformance
W=$TMP/w
mkdir -p "$W"
source "$CONF/inputs.bash"

# base NAME FLOAT_DIR CMD...: an output the mutations start from.
base() {
  local name=$1 float=$2
  shift 2
  run_cmd "$@" </dev/null
  [[ $LAST_RC == 0 ]] || fail "$name: expected exit 0, got $LAST_RC"
  echo "$name $W/$name $float" >>"$W/bases.txt"
}

make_inputs "$W"
Q=$W/in_qwen2 DS=$W/in_ds
base q_w8a8 "$Q" "$B/st-quant-w8a8" "$Q" --stats "$W/q.st" -o "$W/q_w8a8" -q
base q_dyn "$Q" "$B/st-quant-w8a8" "$Q" --dynamic -o "$W/q_dyn" -q
base q_split "$Q" "$B/st-quant-w8a8" "$Q" --dynamic --max-file-size 2K -o "$W/q_split" -q
base q_w8a8s "$Q" "$B/st-sparsify" "$Q" --stats "$W/q.st" --method magnitude -o "$W/q_w8a8s" -q
run_cmd "$B/st-shard" "$W/q_w8a8s" --tp 2 -o "$W/q_sparts" -q </dev/null
[[ $LAST_RC == 0 ]] || fail "shard W8A8S: exit $LAST_RC"
base q_sc2 "$Q" "$B/st-compress" "$W/q_sparts" -o "$W/q_sc2" -q
base l_fa "$W/in_llama" "$B/st-quant-w8a8" "$W/in_llama" --stats "$W/llama.st" --fa-quant -o "$W/l_fa" -q
# kv_b_proj float, as the loaders need it (issue 13 makes that the DeepSeek default).
base d_dyn "$DS" "$B/st-quant-w8a8" "$DS" --dynamic --float '*.kv_b_proj' -o "$W/d_dyn" -q
base d_fak "$DS" "$B/st-quant-w8a8" "$DS" --stats "$W/ds.st" --fa-quant --float '*.kv_b_proj' -o "$W/d_fak" -q

# Exit codes: 0 clean, 1 violations (one line each), 2 cannot check (one line on stderr).
CHECK=(python3 "$CONF/check_consumers.py")
expect_exit 0 "${CHECK[@]}" "$W/q_dyn" --consumer vllm-ascend
expect_stdout_empty
expect_exit 0 "${CHECK[@]}" "$W/q_sc2" --consumer mindie  # st-compress's W8A8SC layout loads as it is
expect_stdout_empty
expect_exit 1 "${CHECK[@]}" "$W/l_fa" --consumer vllm-ascend  # FAQuant on a non-MLA model
expect_stdout_matches '^vllm-ascend fa-[a-z-]+: .*: .*: '
expect_exit 2 "${CHECK[@]}" "$W/nonexistent"
expect_stderr_one_line
expect_stderr_contains "$W/nonexistent: not a directory"
expect_exit 2 "${CHECK[@]}" "$W/q_dyn" --consumer tgi
expect_stderr_one_line
mkdir "$W/empty"
expect_exit 2 "${CHECK[@]}" "$W/empty"
expect_stderr_contains "no weight files"
expect_exit 0 "${CHECK[@]}" --rules
expect_stdout_contains "mindie sc-head"

mkdir "$W/m"
run_cmd python3 "$CONF/mutations.py" "$W/bases.txt" "$W/m"
[[ $LAST_RC == 0 ]] || fail "mutations not caught:
$(cat "$OUT_FILE")"
note "$(cat "$ERR_FILE")"
