#!/usr/bin/env bash
# The bash and zsh completions the build generates from the tools' --help (build/completions)
# complete every flag of every tool after "-", an option's choices after it (st-sparsify
# --method), file names where a file is expected, and nothing after a number (-j).
source "$(dirname "$0")/lib.sh"
command -v zsh >/dev/null || fail "zsh is not installed (scripts/install-deps.sh installs it)"
C=$ST_BIN/completions
GEN=$ST_TESTS/../scripts/gen-completions.py
cd "$TMP"
mkdir model_dir

# bash_complete TOOL WORD...: what the tool's bash completion offers for its last WORD, sorted.
bash_complete() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
    fn=$(complete -p "$1" | sed -E "s/.*-F ([^ ]+) .*/\1/")
    "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$C/bash/$1" "$@" 2>/dev/null | sed '/^$/d' | sort
}
# zsh_complete 'COMMAND LINE': what zsh's completion offers at its end, sorted.
zsh_complete() {
  timeout 30 zsh "$ST_TESTS/cli/complete.zsh" "$C" "$TMP/zsh.out" "$1" || fail "zsh completion of '$1' failed"
  sort -u "$TMP/zsh.out"
}
# expect_offers WHAT GOT WANT
expect_offers() { [[ $2 == "$3" ]] || fail "$1: offered [$(echo $2)], expected [$(echo $3)]"; }

tools=0
for tool in "$ST_BIN"/st-*; do
  [[ -f $tool && -x $tool ]] || continue
  name=$(basename "$tool")
  flags=$(python3 "$GEN" --list "$tool" | cut -f1 | tr , '\n' | sort)
  expect_offers "bash: $name -" "$(bash_complete "$name" -)" "$flags"
  expect_offers "zsh: $name -" "$(zsh_complete "$name -")" "$flags"
  expect_offers "bash: $name --" "$(bash_complete "$name" --)" "$(grep '^--' <<<"$flags")"
  expect_offers "bash: $name mod" "$(bash_complete "$name" mod)" "model_dir"
  tools=$((tools + 1))
done
((tools >= 9)) || fail "only $tools tools in $ST_BIN"

methods=$(python3 "$GEN" --list "$ST_BIN/st-sparsify" | awk -F'\t' '$1 == "--method" { print $3 }' | tr , '\n' | sort)
[[ $methods == *wanda* ]] || fail "st-sparsify --help lists no --method choices: [$methods]"
expect_offers "bash: --method" "$(bash_complete st-sparsify --method '')" "$methods"
expect_offers "zsh: --method" "$(zsh_complete 'st-sparsify --method ')" "$methods"
expect_offers "bash: -j" "$(bash_complete st-quant-w8a8 -j '')" ""
expect_offers "bash: -o mod" "$(bash_complete st-quant-w8a8 -o mod)" "model_dir"
expect_offers "zsh: -o mod" "$(zsh_complete 'st-quant-w8a8 -o mod')" "model_dir"
