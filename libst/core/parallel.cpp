// parallel_for over std::thread and GEMM through OpenBLAS's cblas_sgemm.
#include "libst/core/parallel.hpp"

#include <cblas.h>

#include <algorithm>
#include <thread>
#include <vector>

#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename(void);

namespace st::model {

namespace {
int g_threads = 0;
thread_local bool t_serial = false;
}

const char* blas_core() { return openblas_get_corename(); }

void reexec_for_blas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("ST_BLAS_REEXEC")) return;
  const char* core = openblas_get_corename();
  const bool generic = core && (std::strcmp(core, "Prescott") == 0 || std::strcmp(core, "Core2") == 0 ||
                                std::strcmp(core, "Nehalem") == 0 || std::strcmp(core, "Sandybridge") == 0);
  if (!generic) return;
  __builtin_cpu_init();
  const char* want = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    want = "SkylakeX";
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    want = "Haswell";
  if (!want) return;
  setenv("OPENBLAS_CORETYPE", want, 1);
  setenv("ST_BLAS_REEXEC", "1", 1);
  execv("/proc/self/exe", argv);
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
  const int64_t t = t_serial ? 1 : std::min<int64_t>(threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk)));
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

int for_each_item(int64_t n, const std::function<void(int, int64_t)>& fn) {
  const int workers = int(std::min<int64_t>(threads(), n));
  if (workers <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(0, i);
    return 1;
  }
  openblas_set_num_threads(1);
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      t_serial = true;
      for (int64_t i = w; i < n; i += workers) fn(w, i);
    });
  for (auto& th : pool) th.join();
  openblas_set_num_threads(g_threads);
  return workers;
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
