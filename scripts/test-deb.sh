#!/usr/bin/env bash
# The Debian package: builds it with CPack from a built tree, installs it with dpkg, runs the
# installed tools and finds their man page, completions and libst's pkg-config file, then purges
# it and checks that every file it installed is gone. Changes the system: root only (CI is).
#
#   scripts/test-deb.sh [BUILD_DIR]     default build/
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
fail() {
  echo "test-deb.sh: $*" >&2
  exit 1
}
if [[ $(id -u) -ne 0 ]] || ! command -v dpkg >/dev/null; then
  echo "test-deb.sh: needs root and dpkg: skipped" >&2
  exit 0
fi
dpkg-query -W -f='${Status}' st-tools 2>/dev/null | grep -q installed &&
  fail "st-tools is installed on this machine already; not replacing it"

rm -f "$build"/st-tools_*.deb
(cd "$build" && cpack -G DEB >/dev/null) || fail "cpack failed"
deb=$(ls "$build"/st-tools_*.deb)
version=$(dpkg-deb -f "$deb" Version)
dpkg-deb -f "$deb" Maintainer | grep -q . || fail "$deb has no maintainer"

trap 'dpkg --purge st-tools >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb failed"
installed=$(dpkg -L st-tools)
for tool in build/st-*; do
  [[ -f $tool && -x $tool ]] || continue
  name=$(basename "$tool")
  [[ $(command -v "$name") == /usr/bin/$name ]] || fail "$name is not installed in /usr/bin"
  man -w "$name" >/dev/null || fail "no man page for $name"
  [[ -f /usr/share/bash-completion/completions/$name ]] || fail "no bash completion for $name"
done
/usr/bin/st-inspect --version | grep -qF "$version" || fail "st-inspect --version does not say $version"
/usr/bin/st-inspect tests/fixtures/llama-4m-fp16 >/dev/null || fail "the installed st-inspect fails on a fixture"
[[ $(pkg-config --modversion st) == "$version" ]] || fail "pkg-config does not find libst $version"

dpkg --purge st-tools >/dev/null || fail "dpkg --purge st-tools failed"
trap - EXIT
left=$(while read -r f; do if [[ -f $f || -L $f ]]; then echo "$f"; fi; done <<<"$installed")
[[ -z $left ]] || fail "left behind after purge: $left"
for d in /usr/include/libst /usr/lib/cmake/st /usr/lib/*/cmake/st; do [[ ! -e $d ]] || fail "left behind after purge: $d"; done
echo "test-deb.sh: $(basename "$deb") installs, runs st-inspect --version ($version) and purges cleanly" >&2
