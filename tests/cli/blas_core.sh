# Every tool runs the OpenBLAS core check before anything else (bin/common's run): on a CPU whose
# AVX2 / AVX-512 OpenBLAS does not recognise it re-executes itself with OPENBLAS_CORETYPE, so the
# GEMMs of st-calibrate, st-eval and st-sparsify's SparseGPT all get the fast kernels.
# ST_BLAS_ASSUME_GENERIC=1 simulates such a CPU (OPENBLAS_CORETYPE, a choice the user made, is
# unset for it); --version says which core runs.
source "$(dirname "$0")/lib.sh"
TOOLS=(st-calibrate st-compress st-eval st-inspect st-quant-w8a8 st-shard st-sparsify st-verify)

for t in "${TOOLS[@]}"; do
  expect_exit 0 "$ST_BIN/$t" --version
  expect_stdout_matches "^$t \(st-tools\) [0-9.]+, OpenBLAS core [A-Za-z0-9]+$"
done

if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  note "a generic core is replaced in every tool"
  for t in "${TOOLS[@]}"; do
    expect_exit 0 env -u OPENBLAS_CORETYPE ST_BLAS_ASSUME_GENERIC=1 "$ST_BIN/$t" --version
    expect_stdout_matches "OpenBLAS core (Haswell|SkylakeX) \(chosen by st-tools\)$"
  done
  note "the re-executed tool still reads its stdin from the start"
  cat "$ST_FIXTURES/llama-4m-fp16/model.safetensors" | expect_exit_piped 0 env -u OPENBLAS_CORETYPE ST_BLAS_ASSUME_GENERIC=1 "$ST_BIN/st-inspect" -
  expect_stdout_contains "model.embed_tokens.weight"
  note "a core the user chose is kept"
  expect_exit 0 env ST_BLAS_ASSUME_GENERIC=1 OPENBLAS_CORETYPE=Haswell "$ST_BIN/st-sparsify" --version
  expect_stdout_not_contains "chosen by st-tools"
else
  note "this CPU has no AVX2+FMA: nothing to choose, the re-exec is not exercised"
fi
