#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs every unit and command-level test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
