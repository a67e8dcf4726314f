#!/usr/bin/env zsh
# complete.zsh FPATH_DIR OUT_FILE 'COMMAND LINE': the words zsh's completion offers at the end
# of COMMAND LINE, written to OUT_FILE one a line. An interactive zsh in a pseudo-terminal loads
# the completions from FPATH_DIR, records every compadd, and completes on a Tab.
zmodload zsh/zpty || exit 2
dir=$1 out=$2 line=$3
: >"$out"
zpty z zsh -f -i
zpty -w z "fpath=(${(q)dir} \$fpath); autoload -U compinit; compinit -u -D; PROMPT='> '"
zpty -w z "compadd() { if [[ \${(M)@:#-[OAD]} == '' ]]; then local -a h; builtin compadd -O h \"\$@\"; (( \$#h )) && print -rl -- \$h >>${(q)out}; fi; builtin compadd \"\$@\"; }"
zpty -w z "bindkey '^I' complete-word"
zpty -w -n z "$line"$'\t'
for i in {1..50}; do [[ -s $out ]] && break; sleep 0.1; done
sleep 0.3
zpty -d z
