#!/usr/bin/env bash
# Hostile st.shard recipes in part files (libst/shard/recipe.hpp): a huge row offset, a zstd frame
# declaring 4 GiB, a part moved into another rank's folder, part folder names merge refuses. st-shard
# --merge and st-eval refuse with one line (exit 2) instead of reading outside the mapping or
# allocating the declared size; st-verify reports a problem (exit 1). And st-verify reads the .zst
# recipe st-shard writes for big models instead of silently skipping the per-part numerics.
source "$(dirname "$0")/lib.sh"
FAULT="python3 $ST_TESTS/cli/verify_faults.py"
FP16=$ST_FIXTURES/llama-4m-fp16
DATA=$ST_FIXTURES/data/eval_512x128.u32
W=quant_model_weight_w8a8_dynamic.safetensors

"$ST_BIN/st-quant-w8a8" "$FP16" --dynamic -o "$TMP/q" -q
"$ST_BIN/st-shard" "$TMP/q" --tp 2 -o "$TMP/parts" -q
fresh() { rm -rf "$TMP/p" && cp -r "$TMP/parts" "$TMP/p"; }
refused_everywhere() {  # MESSAGE: merge and eval exit 2 with one line; verify reports it
  expect_exit 2 "$ST_BIN/st-shard" --merge "$TMP/p" -o "$TMP/m"
  expect_stderr_one_line
  expect_stderr_contains "$1"
  expect_no_file "$TMP/m"
  expect_exit 2 "$ST_BIN/st-eval" "$TMP/p" --data "$DATA" --samples 1 --seq-len 16 -q
  expect_stderr_one_line
  expect_stderr_contains "$1"
  expect_stdout_empty
}

# Entry 0 is model.embed_tokens.weight; entry 5 a split q_proj weight.
for entry in 0 5; do
  note "row offset 2^62 in entry $entry: refused, not read outside the part tensor"
  fresh
  for r in 0 1; do $FAULT recipe_at "$TMP/p/part$r-of-2/$W" $entry 4611686018427387904; done
  refused_everywhere "row offset does not match the recipe's entry"
  note "row offset INT64_MAX - 1 in entry $entry: refused when the recipe is read"
  fresh
  for r in 0 1; do $FAULT recipe_at "$TMP/p/part$r-of-2/$W" $entry 9223372036854775806; done
  refused_everywhere "row offset out of range in entry"
  expect_exit 1 "$ST_BIN/st-verify" "$TMP/p" --against "$FP16" -q
  expect_stdout_contains "row offset out of range in entry"
done

note "a 4 GiB zstd frame in st.shard.recipe.zst is refused before it is allocated"
fresh
for r in 0 1; do $FAULT recipe_bomb "$TMP/p/part$r-of-2/$W" 4294967296; done
refused_everywhere "bad st.shard.recipe.zst: declares 4294967296 bytes"
expect_exit 1 "$ST_BIN/st-verify" "$TMP/p" -q
expect_stdout_contains "bad st.shard.recipe.zst: declares 4294967296 bytes"

note "swapped part folders: merge, eval and verify all refuse"
fresh
mv "$TMP/p/part0-of-2" "$TMP/p/x" && mv "$TMP/p/part1-of-2" "$TMP/p/part0-of-2" && mv "$TMP/p/x" "$TMP/p/part1-of-2"
refused_everywhere "part says rank 1, expected 0"
expect_exit 1 "$ST_BIN/st-verify" "$TMP/p" -q
expect_stdout_contains "st.shard says rank 1 of 2, but the file is in 'part0-of-2'"

note "the .zst recipe (big models) is read by st-verify: numerics are checked, not skipped"
expect_exit 0 "$ST_BIN/st-verify" "$TMP/parts" --against "$FP16" --json -q
plain=$(json_query 'len(d["linears"])')
((plain > 0)) || fail "no numerics on plain parts"
fresh
for r in 0 1; do $FAULT recipe_zst "$TMP/p/part$r-of-2/$W"; done
expect_exit 0 "$ST_BIN/st-verify" "$TMP/p" --against "$FP16" --json -q
expect_eq "$(json_query 'len(d["linears"])')" "$plain" "linears with numerics from a .zst recipe"
expect_stdout_not_contains "need st-shard's st.shard.recipe"
expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/p" -o "$TMP/m" -q
expect_same "$TMP/m/$W" "$TMP/q/$W"

# Part folder names (libst/format/parts.hpp): st-verify said ok on sets that merge and eval
# refuse, and printed a line per missing part of a "part0-of-999999".
for case in duplicate padded huge; do
  note "part folders: $case"
  fresh
  case $case in
    duplicate) cp -r "$TMP/p/part0-of-2" "$TMP/p/part00-of-2"; why="expected 'part0-of-2'" ;;
    padded) mv "$TMP/p/part0-of-2" "$TMP/p/part00-of-2" && mv "$TMP/p/part1-of-2" "$TMP/p/part01-of-2"
            why="expected 'part0-of-2'" ;;
    huge) mkdir "$TMP/p/part0-of-999999"; why="part count 999999 is not in 1..65536" ;;
  esac
  rm -rf "$TMP/m"
  refused_everywhere "$why"
  expect_exit 1 "$ST_BIN/st-verify" "$TMP/p" -q
  expect_stdout_lines 1
  expect_stdout_contains "$why"
done
