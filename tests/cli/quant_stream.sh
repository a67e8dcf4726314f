#!/usr/bin/env bash
# st-quant-w8a8 with streams: -o - (description and config in __metadata__) and MODEL = -.
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
python3 "$ST_TESTS/cli/stats_from_reference.py" "$ST_FIXTURES/reference/calibstats_llama-4m-fp16.json" "$TMP/llama.st"

# -o -: one safetensors stream; st-inspect reads it from a pipe; the check passes on it.
expect_exit 0 "$Q" "$ST_FIXTURES/llama-4m-fp16" --anti-outlier none --act-method minmax --stats "$TMP/llama.st" -o - -q
cp "$OUT_FILE" "$TMP/stream.st"
expect_stderr_empty
expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$ST_FIXTURES/llama-4m-fp16" "$TMP/stream.st" --stats "$TMP/llama.st"
# (st-inspect reads only the header, so the writer may see a closed pipe: it exits quietly)
{ "$Q" "$ST_FIXTURES/llama-4m-fp16" --anti-outlier none --act-method minmax --stats "$TMP/llama.st" -o - -q 2>"$TMP/q.err" || true; } |
  expect_exit_piped 0 "$ST_BIN/st-inspect" -
[[ ! -s $TMP/q.err ]] || fail "writer printed: $(cat "$TMP/q.err")"
expect_stdout_contains "model.layers.3.mlp.down_proj.quant_bias"
expect_stdout_contains "W8A8"
meta=$(python3 -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; print(" ".join(sorted(json.loads(f.read(n))["__metadata__"])))' "$TMP/stream.st")
for k in st.file.quant_model_description.json st.file.config.json st.file.tokenizer.json; do
  [[ " $meta " == *" $k "* ]] || fail "stream metadata lacks $k (has: $meta)"
done

# The stream and the directory output hold the same tensors, byte for byte.
expect_exit 0 "$Q" "$ST_FIXTURES/llama-4m-fp16" --anti-outlier none --act-method minmax --stats "$TMP/llama.st" -o "$TMP/dir" -q
expect_exit 0 "$ST_BIN/st-inspect" --diff --values "$TMP/stream.st" "$TMP/dir"

# MODEL = -: a float stream with config.json in __metadata__ (read once, in order) gives the same
# weights as the directory input.
python3 "$ST_TESTS/cli/tiny_model.py" "$TMP/tiny" --bias --model-type qwen2 --stream "$TMP/tiny.stream" --stats "$TMP/tiny.st"
expect_exit 0 "$Q" "$TMP/tiny" --anti-outlier none --act-method minmax --stats "$TMP/tiny.st" -o "$TMP/from_dir" -q
cat "$TMP/tiny.stream" | expect_exit_piped 0 "$Q" - --anti-outlier none --act-method minmax --stats "$TMP/tiny.st" -o "$TMP/from_pipe" -q  # a real pipe
expect_same "$TMP/from_dir/quant_model_weight_w8a8.safetensors" "$TMP/from_pipe/quant_model_weight_w8a8.safetensors"
expect_same "$TMP/from_dir/quant_model_description.json" "$TMP/from_pipe/quant_model_description.json"
expect_exit 0 python3 "$ST_TESTS/cli/check_w8a8.py" "$TMP/tiny" "$TMP/from_pipe" --stats "$TMP/tiny.st"
# pipe to pipe
{ "$Q" - --dynamic -o - -q <"$TMP/tiny.stream" || true; } | expect_exit_piped 0 "$ST_BIN/st-inspect" -
expect_stdout_contains "model.layers.0.self_attn.q_proj.weight_scale"

# A quantized stream is refused as input.
expect_exit_in "$TMP/stream.st" 2 "$Q" - --dynamic -o "$TMP/again"
expect_stderr_one_line
expect_stderr_contains "already quantized"
expect_no_file "$TMP/again"
