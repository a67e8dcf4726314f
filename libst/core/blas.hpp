// OpenBLAS: its CPU kernels (chosen once per process, see reexec_for_blas_core) and the sgemm
// entry points of the forward pass. Its thread count is st::threads() (parallel.hpp).
#pragma once

#include <cstdint>

namespace st {

// OpenBLAS (Debian's DYNAMIC_ARCH build) picks its kernels when it loads; on CPUs it does not
// know (e.g. under KVM) it falls back to "Prescott" SSE3 kernels, 5-7x slower than the AVX-512 or
// AVX2 ones the CPU can run. The core can only be chosen through OPENBLAS_CORETYPE before the
// library loads, so every tool calls this first thing (bin/common's run): when OpenBLAS runs a
// generic core, the variable is unset and the CPU has AVX-512 (SkylakeX) or AVX2+FMA (Haswell),
// it sets the variable and re-executes /proc/self/exe with the same arguments. Returns when
// there is nothing to do (or the exec failed). ST_BLAS_ASSUME_GENERIC=1 makes it act as if
// OpenBLAS had picked a generic core (for tests).
void reexec_for_blas_core(char** argv);
// The OpenBLAS core in use ("SkylakeX", "Haswell", "Prescott", ...), and whether this process
// was re-executed to choose it.
const char* blas_core();
bool blas_core_chosen();

// C[m,n] = alpha * A[m,k] · B[n,k]^T + beta * C  (row-major, leading dimensions given).
void gemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc);
// C[m,n] = alpha * A[m,k] · B[k,n] + beta * C
void gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace st
