#!/usr/bin/env bash
# ctest: slow
# The README's quick start runs as written: its ```sh block, in a fresh directory holding the
# fixtures where a clone has them, with the built tools on PATH; every command succeeds, st-verify
# says "ok" and st-eval prints the float and quantized perplexities.
source "$(dirname "$0")/lib.sh"
README=$ST_TESTS/../README.md
block=$(awk '/^## Quick start/ { in_section = 1; next } /^## / { in_section = 0 }
  in_section && /^```sh$/ { in_block = 1; next } in_block && /^```$/ { exit } in_block' "$README")
[[ $(grep -c '^st-' <<<"$block") -ge 5 ]] || fail "no quick start block in README.md: [$block]"
for tool in st-calibrate st-quant-w8a8 st-shard st-verify st-eval; do
  grep -q "^$tool " <<<"$block" || fail "the quick start does not run $tool"
done
mkdir -p "$TMP/clone/tests"
ln -s "$ST_FIXTURES" "$TMP/clone/tests/fixtures"
cd "$TMP/clone"
printf 'set -euo pipefail\n%s\n' "$block" >"$TMP/quickstart.sh"
expect_exit 0 env PATH="$ST_BIN:$PATH" bash "$TMP/quickstart.sh"
expect_stdout_matches '^ok: parts w8a8-tp2 \(W8A8\), .* 0 problems$'
expect_stdout_matches '^float perplexity +[0-9.]+$'
expect_stdout_matches '^perplexity +[0-9.]+  \(\+[0-9.]+%\)$'
expect_file w8a8-tp2/part1-of-2/quant_model_description.json
note "ok"
