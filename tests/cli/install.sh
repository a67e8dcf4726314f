#!/usr/bin/env bash
# `cmake --install` into a fresh prefix ships the tools, their man pages and completions, and libst
# for programs built on it: examples/find_package (outside the tree) builds against the installed
# libst through find_package(st), with libst.so and with libst.a, and through pkg-config, and each
# build counts a fixture model's tensors and bytes as st-inspect does.
source "$(dirname "$0")/lib.sh"
P=$TMP/prefix
EXAMPLE=$ST_TESTS/../examples/find_package
L=$ST_FIXTURES/llama-4m-fp16
# A sanitizer build's libst needs its runtime in the program too.
FLAGS=""
[[ -n ${ST_SANITIZE:-} ]] && FLAGS="-fsanitize=address,undefined"

expect_exit 0 cmake --install "$ST_BIN" --prefix "$P"
libdir=$(dirname "$(find "$P" -name libst.a)")
[[ $libdir == "$P"/lib* ]] || fail "no libst.a under $P/lib*"
for f in "$libdir/libst.so" "$libdir/cmake/st/stConfig.cmake" "$libdir/cmake/st/stConfigVersion.cmake" \
         "$libdir/pkgconfig/st.pc" "$P/include/libst/format/checkpoint.hpp" "$P/include/libst/core/error.hpp" \
         "$P/share/man/man1/st-inspect.1" "$P/share/bash-completion/completions/st-inspect" \
         "$P/share/zsh/vendor-completions/_st-tools"; do
  expect_file "$f"
done
for tool in "$ST_BIN"/st-*; do
  [[ -f $tool && -x $tool ]] || continue
  expect_file "$P/bin/$(basename "$tool")"
done
[[ -z $(find "$P/include" -name internal.hpp) ]] || fail "internal headers installed"

# What st-inspect says about the fixture, in st-count's words.
expect_exit 0 "$ST_BIN/st-inspect" --json "$L"
want=$(json_query '"hf: %d tensors" % d["summary"]["tensors"]' "$OUT_FILE")
bytes=$(json_query 'd["summary"]["bytes"]' "$OUT_FILE")

check_count() {  # check_count PROGRAM: it runs outside the tree and counts as st-inspect does
  expect_exit 0 env -u LD_LIBRARY_PATH "$1" "$L"
  expect_stdout_contains "$want, "
  expect_stdout_contains " $bytes bytes"
}
for kind in shared static; do
  static=OFF
  [[ $kind == static ]] && static=ON
  expect_exit 0 cmake -S "$EXAMPLE" -B "$TMP/build-$kind" -G Ninja -DCMAKE_PREFIX_PATH="$P" -DST_STATIC=$static \
    -DCMAKE_CXX_FLAGS="$FLAGS" -DCMAKE_BUILD_RPATH="$libdir"
  expect_exit 0 cmake --build "$TMP/build-$kind"
  check_count "$TMP/build-$kind/st-count"
done
# The static build carries no dependency on libst.so.
ldd "$TMP/build-static/st-count" | grep -q 'libst\.so' && fail "the st::st_static build links libst.so"

# pkg-config: the same program with one compiler line.
export PKG_CONFIG_PATH=$libdir/pkgconfig
expect_exit 0 pkg-config --modversion st
expect_eq "$(last_stdout)" "$("$ST_BIN/st-inspect" --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1)" "st.pc version"
# shellcheck disable=SC2046
expect_exit 0 c++ -std=c++17 $FLAGS "$EXAMPLE/st_count.cpp" -o "$TMP/st-count-pc" $(pkg-config --cflags --libs st) \
  -Wl,-rpath,"$libdir"
check_count "$TMP/st-count-pc"
