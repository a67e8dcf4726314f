#!/usr/bin/env bash
# The test command: installs dependencies, builds, and runs the unit and command-level tests.
#
#   scripts/test.sh [CTEST ARGS]   Release build in build/; every test, then (as root) the .deb
#                                  installed, run and purged (scripts/test-deb.sh)
#   scripts/test.sh --sanitize     AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/;
#                                  every test but the slow forward-pass ones (SLOW below); any
#                                  sanitizer report aborts the process and fails its test
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} != --sanitize ]]; then
  bash scripts/build.sh
  ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
  exec bash scripts/test-deb.sh build
fi
shift
# Forward passes over the fixture models: minutes each under the sanitizers, and their code is
# covered by the unit tests and the faster command-level tests.
SLOW='^cli\.(accuracy_default|calibrate_reference|eval_reference|eval_families|eval_bf16|eval_quant|sparsify_accuracy|sparsify_basic|quant_calibrated|shard_eval|output_manifest)$'
bash scripts/install-deps.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" -DST_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
export ST_SANITIZE=1 ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=abort_on_error=1:print_stacktrace=1
exec ctest --test-dir build-asan --output-on-failure -j"$(nproc)" -E "$SLOW" "$@"
