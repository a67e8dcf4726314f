#!/usr/bin/env bash
# Bad input to st-eval / st-calibrate: one-line error naming the problem, exit 2, no output file.
source "$(dirname "$0")/lib.sh"
M=$ST_FIXTURES/llama-4m-fp16

# Unknown architecture: the error names the supported ones.
mkdir "$TMP/gpt2"
cp "$M/model.safetensors" "$TMP/gpt2/"
sed 's/"model_type": "llama"/"model_type": "gpt2"/' "$M/config.json" >"$TMP/gpt2/config.json"
printf '0 1 2 3\n' | python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<4I",*map(int,sys.stdin.read().split())))' >"$TMP/ok.u32"
expect_exit 2 "$ST_BIN/st-eval" "$TMP/gpt2" --data "$TMP/ok.u32" --seq-len 4
expect_stderr_one_line
expect_stderr_contains "unsupported model_type 'gpt2'"
expect_stderr_contains "llama, mistral, qwen2, qwen3, qwen3_moe, mixtral, glm, glm4, chatglm, baichuan, deepseek_v2, deepseek_v3"

# A token id >= vocab size (8192).
python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<4I",1,2,8192,3))' >"$TMP/big.u32"
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/big.u32" --seq-len 4
expect_stderr_one_line
expect_stderr_contains "token id 8192 at position 2"
expect_stderr_contains "big.u32"
expect_exit 2 "$ST_BIN/st-calibrate" "$M" --data "$TMP/big.u32" --seq-len 4 -o "$TMP/s.st"
expect_stderr_contains "token id 8192"
expect_no_file "$TMP/s.st"

# Empty data (raw and JSONL).
: >"$TMP/empty.u32"
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/empty.u32" --seq-len 4
expect_stderr_one_line
expect_stderr_contains "no token sequences"
: >"$TMP/empty.jsonl"
expect_exit 2 "$ST_BIN/st-calibrate" "$M" --data "$TMP/empty.jsonl" -o "$TMP/s.st"
expect_stderr_contains "no token sequences"
expect_no_file "$TMP/s.st"

# A sequence longer than max_position_embeddings (4096).
python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<4097I",*([5]*4097)))' >"$TMP/long.u32"
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/long.u32" --seq-len 4097
expect_stderr_one_line
expect_stderr_contains "more than max_position_embeddings (4096)"

# Raw data that is not a whole number of sequences; malformed JSONL; missing file.
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/ok.u32" --seq-len 3
expect_stderr_contains "not a whole number"
echo '{"input_ids": [1, 2, "x"]}' >"$TMP/bad.jsonl"
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/bad.jsonl"
expect_stderr_contains "line 1"
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/nonexistent.u32"
expect_stderr_contains "nonexistent.u32"

# Usage: --kl-divergence without --quant; calibrate refuses an existing output without -f.
expect_exit 2 "$ST_BIN/st-eval" "$M" --data "$TMP/ok.u32" --seq-len 4 --kl-divergence
expect_stderr_contains "--quant"
echo keep >"$TMP/exists.st"
expect_exit 2 "$ST_BIN/st-calibrate" "$M" --data "$TMP/ok.u32" --seq-len 4 -o "$TMP/exists.st"
expect_stderr_contains "exists"
expect_eq "$(cat "$TMP/exists.st")" keep "existing output untouched"
