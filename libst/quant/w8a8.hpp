// W8A8 arithmetic: the exact formulas of DESIGN.md "W8A8 static" and "W8A8_DYNAMIC".
//
// All arithmetic is IEEE fp32 with round-half-to-even (std::nearbyint), except quant_bias,
// computed in fp64 from fp32 operands. eps = FLT_EPSILON (2^-23).
//
//   weight, per output row n (symmetric):
//     weight_scale[n] = max(f32(max_k |W[n,k]| / 127), eps)
//     W_q[n,k]        = clamp(nearbyint(f32(W[n,k] / weight_scale[n])), -128, 127)      int8
//     weight_offset[n] = 0
//   activation, per tensor (asymmetric), from the calibration range [min_x, max_x]:
//     lo = min(min_x, 0), hi = max(max_x, 0)
//     input_scale  = to_model_dtype(max(f32((hi - lo) / 255), eps))    stored in the model dtype
//     s            = input_scale as stored, read back as fp32          every later step uses s
//     input_offset = clamp(nearbyint(f32(-lo / s)) - 128, -128, 127)   an integer, model dtype
//   deq_scale[n]  = f32(s * weight_scale[n])
//     F16 model: I64 whose low 32 bits are the fp32 bit pattern (high bits 0); BF16 model: F32
//   quant_bias[n] = nearbyint(f64(b[n]) / f64(deq_scale[n]) - input_offset * sum_k W_q[n,k])
//     int32 (b = 0 without a bias; out of int32 range is an error)
// So with x_q = clamp(nearbyint(x / s + input_offset), -128, 127) a consumer computes
//   y = (x_q . W_q^T + quant_bias) * deq_scale  ~=  x . W^T + b.
// W8A8S (msModelSlim's layout) stores no weight_scale / weight_offset; a reader takes
//   weight_scale[n] = f32(deq_scale[n] / s)
// which is within one ulp of the quantizer's (deq_scale is a rounded product): about one row in
// ten differs by that ulp. The integer arithmetic above uses only deq_scale, so it is unaffected.
// W8A8_DYNAMIC stores only weight, weight_scale and weight_offset (activations are quantized
// per token at run time); a bias stays float.
#pragma once

#include <cfloat>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "libst/core/dtype.hpp"
#include "libst/core/error.hpp"

namespace st::w8a8 {

constexpr float kEps = FLT_EPSILON;

struct ActivationParams {
  float scale = 0;   // input_scale exactly as stored (already rounded to the model dtype)
  float offset = 0;  // input_offset, an integer in [-128, 127]
};

// From a calibration range; model_dtype F16, BF16 or F32 decides how input_scale is rounded.
// NaN/Inf in the range, or a scale that overflows the model dtype, is Errc::numeric.
Result<ActivationParams> activation_params(float min_x, float max_x, DType model_dtype);

// Input ranges of fused groups: a group's range is the union of its linears' ranges, so q/k/v
// (and gate/up) share one input_scale / input_offset.
class GroupRanges {
 public:
  void add(const std::string& group, float lo, float hi);
  // Activation parameters per group; errors name the statistics file and the group.
  Result<std::map<std::string, ActivationParams>> params(DType model_dtype, const std::string& stats_path) const;

 private:
  std::map<std::string, std::pair<float, float>> range_;
};

// Quantizes W [n,k] (src F16, BF16 or F32, row-major) per output row: q [n*k], scale [n] and,
// when row_sum is not null, row_sum[n] = sum_k q[n,k]. Rows run in parallel (st::threads()).
// A NaN or Inf weight is Errc::numeric naming its row and column (the caller adds the tensor).
Status quantize_rows(DType src, const void* w, int64_t n, int64_t k, int8_t* q, float* scale, int64_t* row_sum);
// The same from fp32 rows that rows(r0, r1, dst) writes ((r1 - r0) * k values, called from the
// worker threads with disjoint ranges): W is never held whole in fp32.
using RowSource = std::function<void(int64_t r0, int64_t r1, float* dst)>;
Status quantize_rows(const RowSource& rows, int64_t n, int64_t k, int8_t* q, float* scale, int64_t* row_sum);

// deq_scale[i] = f32(input_scale * weight_scale[i]).
void deq_scale(float input_scale, const float* weight_scale, int64_t n, float* out);

// The dtype deq_scale is stored in: I64 for an F16 model, F32 otherwise.
DType deq_scale_dtype(DType model_dtype);
// Encodes n fp32 deq_scales as deq_scale_dtype(model_dtype) (8 or 4 bytes each) into out.
void encode_deq_scale(DType model_dtype, const float* deq, int64_t n, void* out);

// quant_bias[i] as above; bias may be null (no bias). Errc::numeric when a value is not finite
// or does not fit int32 (names the row).
Status quant_bias(const float* bias, const float* deq, const int64_t* row_sum, float input_offset, int64_t n,
                  int32_t* out);

// Rounds an fp32 value to dtype (F16, BF16, F32) and back: what storing it does.
float round_to(DType dtype, float v);

}  // namespace st::w8a8
