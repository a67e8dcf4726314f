// Vectorized exp for softmax, SiLU and log-sum-exp (AVX2 when the CPU has it, scalar otherwise).
#pragma once

#include <cstdint>

namespace st::model {

// x[i] = exp(x[i] - shift) for i in [0, n); returns the sum of the results.
double exp_shift_inplace(float* x, int64_t n, float shift);
// sum of exp(x[i] - shift), x unchanged.
double exp_shift_sum(const float* x, int64_t n, float shift);
// y[i] = g[i] * sigmoid(g[i]) * u[i]  (SiLU(gate) * up), in place into g.
void silu_mul(float* g, const float* u, int64_t n);
// max of x[0..n)
float max_of(const float* x, int64_t n);

}  // namespace st::model
