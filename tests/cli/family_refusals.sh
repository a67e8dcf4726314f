#!/usr/bin/env bash
# A variant of a family that the forward pass does not run (a config.json key it does not handle)
# is refused by every tool that reads the model, with one line naming config.json and the key
# (exit 2, nothing written) — never a silent wrong answer. Tiny checkpoints of tests/cli/tiny_family.py.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3  # Debian's, with python3-numpy (scripts/install-deps.sh)

# variant FAMILY PYTHON-EDIT-OF-c: $TMP/m, the family's tiny checkpoint with config.json edited.
variant() {
  rm -rf "$TMP/m"
  $PY "$ST_TESTS/cli/tiny_family.py" "$1" "$TMP/m" --tokens "$TMP/tok.u32" || fail "tiny_family.py $1"
  $PY - "$TMP/m/config.json" "$2" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
exec(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"))
EOF
}
refused() {  # KEY: every reader of the model refuses it, naming the key
  expect_exit 2 "$ST_BIN/st-eval" "$TMP/m" --data "$TMP/tok.u32" --seq-len 16 -q
  expect_stderr_one_line
  expect_stderr_contains "'$TMP/m/config.json'"
  expect_stderr_contains "'$1'"
  expect_stdout_empty
  expect_exit 2 "$ST_BIN/st-calibrate" "$TMP/m" --data "$TMP/tok.u32" --seq-len 16 -o "$TMP/s.st" -q
  expect_stderr_one_line
  expect_stderr_contains "'$1'"
  expect_no_file "$TMP/s.st"
  expect_exit 2 "$ST_BIN/st-quant-w8a8" "$TMP/m" --dynamic -o "$TMP/q" -q
  expect_stderr_one_line
  expect_stderr_contains "'$1'"
  expect_no_file "$TMP/q"
  expect_exit 2 "$ST_BIN/st-shard" "$TMP/m" --tp 2 -o "$TMP/p" -q
  expect_stderr_contains "'$1'"
  expect_no_file "$TMP/p"
}

note "ChatGLM: the remote-code variants other than ChatGLM2/3 / GLM-4-9B-chat's"
variant chatglm 'c["multi_query_attention"] = False'
refused multi_query_attention
variant chatglm 'c["rmsnorm"] = False'
refused rmsnorm
variant chatglm 'c["pre_seq_len"] = 128'
refused pre_seq_len
variant chatglm 'c["position_encoding_2d"] = True'
refused position_encoding_2d

note "Baichuan: a position encoding that does not match the layer count MindIE tells the 7B and 13B apart by"
variant baichuan2-13b 'c["max_position_embeddings"] = 64'
refused max_position_embeddings
variant baichuan2-7b 'del c["max_position_embeddings"]'
refused max_position_embeddings

note "Qwen3-MoE with sliding windows; partial RoPE outside GLM"
variant qwen3_moe 'c["use_sliding_window"] = True'
refused use_sliding_window
variant mixtral 'c["partial_rotary_factor"] = 0.5'
refused partial_rotary_factor

note "the unmodified tiny checkpoints are accepted (the edit, not the family, is refused)"
variant chatglm 'pass'
expect_exit 0 "$ST_BIN/st-eval" "$TMP/m" --data "$TMP/tok.u32" --seq-len 16 -q
