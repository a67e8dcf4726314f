# Shared helpers for command-level tests (tests/cli/*.sh): source it, then call the expect_*.
#
#   source "$(dirname "$0")/lib.sh"      # sets -euo pipefail, makes $TMP (removed on exit)
#   expect_exit 0 "$ST_BIN/st-inspect" "$ST_FIXTURES/llama-4m-fp16"
#   expect_stdout_contains "model.embed_tokens.weight"
#   expect_exit 2 "$ST_BIN/st-inspect" /nonexistent
#   expect_stderr_one_line; expect_stderr_contains "/nonexistent"
#
# expect_exit runs a command with stdout in $OUT_FILE and stderr in $ERR_FILE (the "last
# run"); the other expect_* check the last run. Its stdin is /dev/null; use
# expect_exit_in FILE CODE CMD... to feed a file, or `cat f | expect_exit_piped CODE CMD...`
# to feed a pipe (non-seekable). Every failure prints the test's
# name, the line, what was expected, and the last run's stdout/stderr, then exits 1.
# ST_UPDATE_GOLDEN=1 makes expect_golden rewrite the golden file instead of comparing.
set -euo pipefail

: "${ST_BIN:?ST_BIN must name the build directory holding the tools}"
: "${ST_FIXTURES:?ST_FIXTURES must name tests/fixtures}"
: "${ST_TESTS:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
ST_TEST_NAME=$(basename "$0" .sh)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/st-cli-${ST_TEST_NAME}.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
OUT_FILE=$TMP/.last.stdout
ERR_FILE=$TMP/.last.stderr
LAST_CMD=""
LAST_RC=0
: >"$OUT_FILE"
: >"$ERR_FILE"

# fail MESSAGE: report and exit 1, showing the last run.
fail() {
  {
    echo "FAIL [$ST_TEST_NAME] line ${BASH_LINENO[1]:-?}: $*"
    if [[ -n $LAST_CMD ]]; then
      echo "  last command (exit $LAST_RC): $LAST_CMD"
      echo "  --- stdout (first 40 lines) ---"
      head -n 40 "$OUT_FILE" | sed 's/^/  | /'
      echo "  --- stderr (first 40 lines) ---"
      head -n 40 "$ERR_FILE" | sed 's/^/  | /'
    fi
  } >&2
  exit 1
}

# note MESSAGE: progress line on stderr (ctest shows it with --output-on-failure / -V).
note() { echo "[$ST_TEST_NAME] $*" >&2; }

# run_cmd CMD...: run with stdout/stderr captured (stdin as given), never aborting; sets LAST_RC.
run_cmd() {
  LAST_CMD="$*"
  set +e
  "$@" >"$OUT_FILE" 2>"$ERR_FILE"
  LAST_RC=$?
  set -e
  # A signal (128+N) or a crash is never an answer.
  if ((LAST_RC > 128)); then fail "command died from signal $((LAST_RC - 128))"; fi
  return 0
}

# expect_exit CODE CMD...: run CMD (stdin /dev/null) and require exit status CODE.
expect_exit() {
  local want=$1
  shift
  run_cmd "$@" </dev/null
  [[ $LAST_RC == "$want" ]] || fail "expected exit $want, got $LAST_RC"
}
# expect_exit_in FILE CODE CMD...: the same with stdin read from FILE.
expect_exit_in() {
  local in=$1 want=$2
  shift 2
  run_cmd "$@" <"$in"
  [[ $LAST_RC == "$want" ]] || fail "expected exit $want, got $LAST_RC"
}
# expect_exit_piped CODE CMD...: the same with the caller's stdin (cat f | expect_exit_piped ...).
expect_exit_piped() {
  local want=$1
  shift
  run_cmd "$@"
  [[ $LAST_RC == "$want" ]] || fail "expected exit $want, got $LAST_RC"
}

# stdout / stderr of the last run.
last_stdout() { cat "$OUT_FILE"; }
last_stderr() { cat "$ERR_FILE"; }

expect_stdout_contains() {
  grep -qF -- "$1" "$OUT_FILE" || fail "stdout does not contain: $1"
}
expect_stdout_not_contains() {
  if grep -qF -- "$1" "$OUT_FILE"; then fail "stdout unexpectedly contains: $1"; fi
}
expect_stdout_matches() {  # extended regex
  grep -qE -- "$1" "$OUT_FILE" || fail "stdout matches no line of: $1"
}
expect_stdout_empty() {
  [[ ! -s $OUT_FILE ]] || fail "stdout is not empty"
}
expect_stderr_contains() {
  grep -qF -- "$1" "$ERR_FILE" || fail "stderr does not contain: $1"
}
expect_stderr_matches() {
  grep -qE -- "$1" "$ERR_FILE" || fail "stderr matches no line of: $1"
}
expect_stderr_empty() {
  [[ ! -s $ERR_FILE ]] || fail "stderr is not empty"
}
# Exactly one line on stderr (the one-line error rule).
expect_stderr_one_line() {
  local n
  n=$(wc -l <"$ERR_FILE")
  [[ $n == 1 ]] || fail "expected exactly one line on stderr, got $n"
}
# expect_stdout_lines N: stdout has exactly N lines.
expect_stdout_lines() {
  local n
  n=$(wc -l <"$OUT_FILE")
  [[ $n == "$1" ]] || fail "expected $1 lines on stdout, got $n"
}

# on_tty NAME CMD...: runs CMD with stdin, stdout and stderr on a pseudo-terminal; its output
# (both streams, as the terminal saw it) goes to $TMP/NAME.tty.
on_tty() {
  local name=$1
  shift
  script -qefc "$(printf '%q ' "$@")" /dev/null </dev/null >"$TMP/$name.tty" ||
    fail "$name: exit $? on a terminal: $(tr '\r\033' '\n^' <"$TMP/$name.tty" | tail -n 3)"
}
expect_file() { [[ -f $1 ]] || fail "expected file $1"; }
expect_no_file() { [[ ! -e $1 ]] || fail "expected no $1"; }
# expect_same A B: byte-identical files.
expect_same() { cmp -s -- "$1" "$2" || fail "files differ: $1 $2"; }

# expect_golden NAME [FILE]: FILE (default: last stdout) equals tests/cli/golden/NAME.
expect_golden() {
  local golden=$ST_TESTS/cli/golden/$1 got=${2:-$OUT_FILE}
  if [[ ${ST_UPDATE_GOLDEN:-0} == 1 ]]; then
    cp -- "$got" "$golden"
    note "updated golden $1"
    return 0
  fi
  [[ -f $golden ]] || fail "missing golden file $golden (run with ST_UPDATE_GOLDEN=1 to create it)"
  if ! diff -u -- "$golden" "$got" >"$TMP/.golden.diff"; then
    head -n 60 "$TMP/.golden.diff" >&2
    fail "output differs from golden $1"
  fi
}

# expect_json [FILE]: FILE (default: last stdout) is one valid JSON document.
expect_json() {
  python3 -m json.tool -- "${1:-$OUT_FILE}" >/dev/null 2>"$TMP/.json.err" ||
    fail "not valid JSON: $(head -n 1 "$TMP/.json.err")"
}

# json_query EXPR [FILE]: print a Python expression evaluated on the parsed JSON as `d`.
#   json_query 'len(d["tensors"])'
json_query() {
  python3 -c 'import json,sys; d=json.load(open(sys.argv[2])); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' \
    "$1" "${2:-$OUT_FILE}"
}

# expect_eq GOT WANT [WHAT]
expect_eq() {
  [[ $1 == "$2" ]] || fail "${3:-value}: expected '$2', got '$1'"
}
