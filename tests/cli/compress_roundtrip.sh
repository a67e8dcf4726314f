# st-compress on the real fixtures: W8A8S (50 % Wanda) -> W8A8SC -> W8A8S is bit for bit, for one
# directory and for shard -> compress -> decompress -> merge; index and info follow the MindIE
# formula; the weights take at most 0.70 of their int8 bytes; W8A8S parts keep embed_tokens whole
# unless --split-embeddings.
# ctest: slow
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/compress_helpers.bash"

for model in llama-4m-fp16 deepseekv3-mla-6m-fp16; do
  note "$model"
  M=$ST_FIXTURES/$model
  W=$TMP/$model
  mkdir -p "$W"
  make_stats "$M" "$W/stats.safetensors"
  expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$W/stats.safetensors" -o "$W/s" -q

  # One directory (TP = 1).
  expect_exit 0 "$ST_BIN/st-compress" "$W/s" -o "$W/sc" --json
  expect_json
  expect_eq "$(json_query 'd["mode"]')" compress
  ratio=$(json_query 'd["ratio"]')
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) <= 0.70 else 1)" "$ratio" || fail "ratio $ratio > 0.70"
  expect_stderr_contains "compressed"
  # MindIE's layout: part0-of-1/ also at TP 1, config.json (quantize w8a8sc) at the root.
  expect_file "$W/sc/part0-of-1/quant_model_weight_w8a8sc.safetensors"
  expect_no_file "$W/sc/quant_model_weight_w8a8sc.safetensors"
  expect_no_file "$W/sc/part0-of-1/quant_model_weight_w8a8s.safetensors"
  grep -q '"quantize": "w8a8sc"' "$W/sc/config.json" || fail "config.json quantize is not w8a8sc"
  read -r count comp raw < <(check_w8a8sc_part "$W/sc/part0-of-1" "$W/s") || fail "W8A8SC layout check failed"
  python3 -c "import sys; c, r = int(sys.argv[1]), int(sys.argv[2]); sys.exit(0 if c <= 0.70 * r else 1)" "$comp" "$raw" ||
    fail "weights + index take $comp of $raw int8 bytes (> 0.70)"
  note "TP1: $count weights, $comp / $raw bytes"
  ! command -v xxhsum >/dev/null || (cd "$W/sc/part0-of-1" && xxhsum -c quant_model_weight_w8a8sc.safetensors.xxh3 >/dev/null 2>&1) || fail "checksum file does not verify"

  expect_exit 0 "$ST_BIN/st-compress" -d "$W/sc" -o "$W/back"
  expect_same_dir "$W/s" "$W/back"

  # W8A8S parts keep embed_tokens whole (MindIE's W8A8SC classes read it whole), unless asked.
  expect_exit 0 "$ST_BIN/st-shard" "$W/s" --tp 2 --dry-run
  expect_stdout_matches '^model\.embed_tokens\.weight +replicate '
  expect_exit 0 "$ST_BIN/st-shard" "$W/s" --tp 2 --dry-run --split-embeddings
  expect_stdout_matches '^model\.embed_tokens\.weight +split dim 0 /2 '
  expect_exit 2 "$ST_BIN/st-shard" "$W/s" --tp 2 --dry-run --split-embeddings --replicate-embeddings
  expect_stderr_one_line
  expect_stderr_contains "exclude each other"

  # Tensor parallel: shard -> compress -> decompress -> merge.
  expect_exit 0 "$ST_BIN/st-shard" "$W/s" --tp 2 -o "$W/parts" -q
  expect_exit 0 "$ST_BIN/st-compress" "$W/parts" -o "$W/parts-sc" --json
  expect_eq "$(json_query 'd["parts"]')" 2
  nparts=0
  for d in "$W"/parts/part*-of-2; do
    p=$(basename "$d")
    nparts=$((nparts + 1))
    expect_file "$W/parts-sc/$p/quant_model_weight_w8a8sc.safetensors"
    check_w8a8sc_part "$W/parts-sc/$p" "$W/parts/$p" >/dev/null || fail "W8A8SC layout check failed in $p"
  done
  expect_eq "$nparts" 2 "part folders"
  expect_exit 0 "$ST_BIN/st-compress" -d "$W/parts-sc" -o "$W/parts-back"
  expect_same_dir "$W/parts" "$W/parts-back"
  expect_exit 0 "$ST_BIN/st-shard" --merge "$W/parts-back" -o "$W/merged" -q
  expect_same "$W/s/quant_model_weight_w8a8s.safetensors" "$W/merged/quant_model_weight_w8a8s.safetensors"
  expect_same "$W/s/quant_model_description.json" "$W/merged/quant_model_description.json"
done
