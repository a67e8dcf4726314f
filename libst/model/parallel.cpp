// parallel_for over std::thread and GEMM through OpenBLAS's cblas_sgemm.
#include "libst/model/parallel.hpp"

#include <cblas.h>

#include <algorithm>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace st::model {

namespace {
int g_threads = 0;
}

void set_threads(int n) {
  g_threads = std::max(1, n);
  openblas_set_num_threads(g_threads);
}

int threads() {
  if (g_threads == 0) set_threads(int(std::max(1u, std::thread::hardware_concurrency())));
  return g_threads;
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk) {
  const int64_t t = std::min<int64_t>(threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk)));
  if (t <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  std::vector<std::thread> pool;
  const int64_t step = (n + t - 1) / t;
  for (int64_t i = 1; i < t; ++i) {
    const int64_t b = i * step, e = std::min(n, b + step);
    if (b < e) pool.emplace_back(fn, b, e);
  }
  fn(0, std::min(n, step));
  for (auto& th : pool) th.join();
}

void gemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  threads();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta,
              c, int(ldc));
}

void gemm_nn(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  threads();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb),
              beta, c, int(ldc));
}

}  // namespace st::model
