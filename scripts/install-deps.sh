#!/usr/bin/env bash
# Installs the Debian packages st-tools builds, tests and benchmarks with (needs root or sudo).
# python3-numpy: the tests' independent reference forward pass (tests/cli/reference_forward.py),
# run with Debian's /usr/bin/python3.
set -euo pipefail
packages=(cmake ninja-build g++ pkg-config nlohmann-json3-dev libzstd-dev libcli11-dev
          libxxhash-dev libgtest-dev libopenblas-dev libpcre2-dev libutf8proc-dev xxhash zstd
          python3 python3-numpy time parallel clang libclang-rt-14-dev  # clang + its runtimes: scripts/fuzz.sh (libFuzzer)
          man-db zsh file dpkg-dev)  # the man page and completion tests; CPack's .deb (shlibdeps)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
