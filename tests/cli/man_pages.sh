#!/usr/bin/env bash
# Every tool has a man page (as the build makes it from man/, the version filled in) that renders
# with `man -l` and groff without a warning, carries the version `--version` prints and the one footer
# "st-tools manual", and documents in OPTIONS exactly the flags the tool's --help lists.
source "$(dirname "$0")/lib.sh"
command -v man >/dev/null || fail "man is not installed (scripts/install-deps.sh installs man-db)"
GEN=$ST_TESTS/../scripts/gen-completions.py
export LC_ALL=C MANWIDTH=80 MANPAGER=cat MAN_KEEP_FORMATTING=

# man_flags PAGE: the flags named by the tags of the rendered page's OPTIONS section, one a line.
man_flags() {
  man -l "$1" | awk '/^[A-Z]/ { in_options = ($0 == "OPTIONS") } in_options' |
    grep -oE '^       -[^ ,]+( [^ ,-][^ ,]*)?(, -[^ ,]+( [^ ,-][^ ,]*)?)*' |
    grep -oE '(^ +|, )-[-A-Za-z0-9]+' | sed 's/^[ ,]*//' | sort -u
}

tools=0
for tool in "$ST_BIN"/st-*; do
  [[ -f $tool && -x $tool ]] || continue
  name=$(basename "$tool")
  page=$ST_BIN/man/$name.1
  expect_file "$page"
  version=$("$tool" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)
  expect_eq "$(head -n 3 "$page" | grep '^\.TH')" ".TH ${name^^} 1 \"2026\" \"st-tools $version\" \"st-tools manual\"" \
    "$name.1 title line"
  expect_exit 0 groff -man -t -ww -z "$page"  # every groff warning
  expect_stderr_empty
  expect_exit 0 man -l "$page"
  expect_stderr_empty
  expect_stdout_contains "st-tools $version"
  expect_stdout_contains "st-tools manual"
  # A line starting with a quote or a dot in the source once swallowed a letter ("uantize").
  expect_stdout_not_contains '"uantize"'
  help=$(python3 "$GEN" --list "$tool" | cut -f1 | tr , '\n' | sort -u)
  documented=$(man_flags "$page")
  [[ $help == "$documented" ]] ||
    fail "$name: --help and man page disagree: only in --help: $(comm -23 <(echo "$help") <(echo "$documented") | xargs)," \
      "only in the man page: $(comm -13 <(echo "$help") <(echo "$documented") | xargs)"
  tools=$((tools + 1))
done
((tools == $(ls "$ST_TESTS"/../man/*.1 | wc -l))) || fail "$tools tools for $(ls "$ST_TESTS"/../man/*.1 | wc -l) man pages"
