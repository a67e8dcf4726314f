// CPUID feature bits (Intel SDM vol. 2A, CPUID leaves 1 and 7).
#include "libst/core/cpu.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace st {

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__)
    unsigned a = 0, b = 0, ecx = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &ecx, &d)) return c;
    const bool osxsave = ecx & (1u << 27);
    unsigned xcr0 = 0, hi = 0;
    if (osxsave) __asm__("xgetbv" : "=a"(xcr0), "=d"(hi) : "c"(0));
    if ((xcr0 & 6u) != 6u) return c;  // the OS does not save XMM and YMM state
    c.avx = ecx & (1u << 28);
    c.fma = ecx & (1u << 12);
    c.f16c = ecx & (1u << 29);
    unsigned ebx7 = 0;
    if (__get_cpuid_count(7, 0, &a, &ebx7, &ecx, &d)) c.avx2 = ebx7 & (1u << 5);
#endif
    return c;
  }();
  return f;
}

}  // namespace st
