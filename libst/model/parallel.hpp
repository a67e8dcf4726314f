// Threads for the forward pass: a parallel loop and the sgemm entry point.
#pragma once

#include <cstdint>
#include <functional>

namespace st::model {

// Worker threads used by parallel_for and the BLAS (default: hardware concurrency).
void set_threads(int n);
int threads();

// Runs fn(begin, end) over [0, n) split into contiguous chunks, one per thread; runs inline
// when n is below min_chunk * 2 or one thread is configured.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk = 1);

// C[m,n] = alpha * A[m,k] · B[n,k]^T + beta * C  (row-major, leading dimensions given).
void gemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc);
// C[m,n] = alpha * A[m,k] · B[k,n] + beta * C
void gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace st::model
