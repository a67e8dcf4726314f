#!/usr/bin/env bash
# Fuzzes every target of tests/fuzz (NAME_fuzz.cpp) for a bounded time with clang's libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer, starting from its committed corpus
# (tests/fuzz/corpus/NAME; new inputs go to build-fuzz/corpus/NAME, not into the repository).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 60, or $ST_FUZZ_SECONDS
#
# A crash, leak, sanitizer report or timeout stops with exit 1 and leaves the input that caused it
# in build-fuzz/crashes/ (replay it: build-fuzz/tests/fuzz/fuzz_NAME FILE). Without clang and its
# libFuzzer runtime (Debian: clang, libclang-rt-14-dev) the corpora are only replayed through the
# plain driver (the fuzz.* tests of the normal build).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${ST_FUZZ_SECONDS:-60}}
targets=()
for f in tests/fuzz/*_fuzz.cpp; do
  n=$(basename "$f" .cpp)
  targets+=("${n%_fuzz}")
done

if ! command -v clang++ >/dev/null ||
   ! echo 'extern "C" int LLVMFuzzerTestOneInput(const char*, unsigned long) { return 0; }' |
     clang++ -x c++ -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
  echo "fuzz.sh: no clang with libFuzzer here: replaying the corpora instead" >&2
  [[ -d build ]] || bash scripts/build.sh
  cmake --build build -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
  exec ctest --test-dir build --output-on-failure -R '^fuzz\.'
fi

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" -DST_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
mkdir -p build-fuzz/crashes
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  echo "fuzz.sh: $t for ${seconds}s" >&2
  "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t-" \
    "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" 2>"build-fuzz/$t.log" ||
    { tail -n 40 "build-fuzz/$t.log" >&2; echo "fuzz.sh: $t failed; input in build-fuzz/crashes/" >&2; exit 1; }
  grep -E '^stat::number_of_executed_units|^#[0-9]+ *DONE' "build-fuzz/$t.log" | tail -n 2 >&2 || true
done
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no failure" >&2
