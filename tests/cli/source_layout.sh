#!/usr/bin/env bash
# The source stays navigable: every libst and bin file opens with a one-line "// " comment that
# says its job, and none is over 600 lines (split it where its comments name the parts).
source "$(dirname "$0")/lib.sh"
ROOT=$ST_TESTS/..
n=0
while IFS= read -r f; do
  n=$((n + 1))
  first=$(head -n 1 "$ROOT/$f")
  [[ $first =~ ^//\ [^[:space:]] ]] || fail "$f: the first line is not a '// ' comment saying the file's job: $first"
  lines=$(wc -l <"$ROOT/$f")
  ((lines <= 600)) || fail "$f: $lines lines (over 600): split it by concern"
done < <(cd "$ROOT" && find libst bin -name '*.cpp' -o -name '*.hpp' | sort)
((n > 100)) || fail "only $n source files found under $ROOT"
