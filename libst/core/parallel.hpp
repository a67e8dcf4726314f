// Threads for the forward pass: a parallel loop and the sgemm entry point.
#pragma once

#include <cstdint>
#include <functional>

namespace st::model {

// OpenBLAS (Debian's DYNAMIC_ARCH build) picks its kernels when it loads; on CPUs it does not
// know (e.g. under KVM) it falls back to "Prescott" SSE3 kernels, 5-7x slower than the AVX-512 or
// AVX2 ones the CPU can run. The core can only be chosen through OPENBLAS_CORETYPE before the
// library loads, so a tool calls this first thing in main(): when OpenBLAS runs a generic core,
// the variable is unset and the CPU has AVX-512 (SkylakeX) or AVX2+FMA (Haswell), it sets the
// variable and re-executes /proc/self/exe with the same arguments. Returns when nothing to do
// (or the exec failed).
void reexec_for_blas_core(char** argv);
// The OpenBLAS core in use ("SkylakeX", "Haswell", "Prescott", ...).
const char* blas_core();

// Worker threads used by parallel_for and the BLAS (default: hardware concurrency).
void set_threads(int n);
int threads();

// Runs fn(begin, end) over [0, n) split into contiguous chunks, one per thread; runs inline
// when n is below min_chunk * 2 or one thread is configured.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk = 1);

// Runs fn(worker, i) for every i in [0, n) on min(threads(), n) workers, sequence i on worker
// i % workers (a fixed assignment, so per-worker results merge deterministically). Inside, each
// worker runs single-threaded (parallel_for inline, BLAS on one thread): whole sequences in
// parallel need no fine-grained synchronisation, which matters on a loaded machine. With one
// worker, fn runs on the calling thread with the normal intra-op threading. Returns the number
// of workers used.
int for_each_item(int64_t n, const std::function<void(int, int64_t)>& fn);

// C[m,n] = alpha * A[m,k] · B[n,k]^T + beta * C  (row-major, leading dimensions given).
void gemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc);
// C[m,n] = alpha * A[m,k] · B[k,n] + beta * C
void gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace st::model
