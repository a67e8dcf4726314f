#!/usr/bin/env bash
# Configures and builds st-tools (Release) into ./build after making sure the dependencies are there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
werror=()
[[ ${CI:-} == true ]] && werror=(-DST_WERROR=ON)  # CI: a new warning fails the build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${werror[@]}" >/dev/null
cmake --build build -j"$(nproc)"
