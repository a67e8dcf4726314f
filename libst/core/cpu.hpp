// x86 instruction-set extensions, checked once at run time from CPUID (and XGETBV: the OS must
// save the AVX registers), the same way with gcc and clang (clang 14's __builtin_cpu_supports does
// not know "f16c"). On other architectures every check is false.
#pragma once

namespace st {

struct CpuFeatures {
  bool avx = false, avx2 = false, fma = false, f16c = false;
};
const CpuFeatures& cpu_features();

}  // namespace st
