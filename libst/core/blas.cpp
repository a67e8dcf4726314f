// OpenBLAS's core choice (re-executing with OPENBLAS_CORETYPE) and cblas_sgemm.
#include "libst/core/blas.hpp"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "libst/core/parallel.hpp"

extern "C" char* openblas_get_corename(void);

namespace st {

const char* blas_core() { return openblas_get_corename(); }

bool blas_core_chosen() { return std::getenv("ST_BLAS_REEXEC") != nullptr; }

void reexec_for_blas_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("ST_BLAS_REEXEC")) return;
  const char* core = openblas_get_corename();
  const bool generic = (core && (std::strcmp(core, "Prescott") == 0 || std::strcmp(core, "Core2") == 0 ||
                                 std::strcmp(core, "Nehalem") == 0 || std::strcmp(core, "Sandybridge") == 0)) ||
                       std::getenv("ST_BLAS_ASSUME_GENERIC");  // tests: behave as on a CPU OpenBLAS misjudges
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

void gemm_nt(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
             int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  threads();  // the BLAS gets the thread count before its first call
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

}  // namespace st
