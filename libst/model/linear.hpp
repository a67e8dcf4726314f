// A linear layer that runs what the checkpoint describes: FLOAT, W8A8 / W8A8S static
// (integer arithmetic of the consumer) or W8A8_DYNAMIC (per-token int8 activations).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libst/format/checkpoint.hpp"
#include "libst/core/dtype.hpp"
#include "libst/core/error.hpp"

namespace st::model {

enum class LinearKind { floating, w8a8, w8a8_dynamic };
const char* linear_kind_name(LinearKind k);

class Linear {
 public:
  Linear() = default;
  // Loads <prefix>.weight and its companions; the description (if any) decides the kind.
  static Result<Linear> load(const Checkpoint& ck, const std::string& prefix);
  // A float linear from a row-major weight [out, in] and optional bias [out].
  static Linear from_float(std::string name, int64_t out, int64_t in, std::vector<float> w, std::vector<float> bias = {});

  const std::string& name() const { return name_; }
  int64_t in() const { return in_; }
  int64_t out() const { return out_; }
  LinearKind kind() const { return kind_; }

  // y[rows, out] = linear(x[rows, in]).
  void forward(const float* x, int64_t rows, float* y) const;
  // The weight as float [out, in] (dequantized for the int8 kinds).
  std::vector<float> float_weight() const;
  // Replaces a FLOAT linear's weight by fp32 values [out, in] (SparseGPT's pruned weight, which
  // the rest of the run then uses); the bias stays.
  void set_weight(const std::vector<float>& w);

 private:
  std::string name_;
  int64_t in_ = 0, out_ = 0;
  LinearKind kind_ = LinearKind::floating;
  // The weight [out, in] as stored: F16 / BF16 / F32 or block-scaled FP8 values (FLOAT) or the
  // int8 values (I8), decoded to fp32 a tile of rows at a time in forward() (half, a quarter or
  // for FP8 an eighth of an fp32 copy).
  FloatDecoder w_dec_;
  std::vector<uint8_t> w_;
  // Keeps the weight's bytes (see w_); a FLOAT weight must be finite.
  Status keep_weight(const Checkpoint& ck, const TensorEntry& e);
  // Rows [n0, n1) of the weight as fp32 values (the int8 kinds: the integers, not dequantized).
  void weight_rows(int64_t n0, int64_t n1, float* dst) const;
  // Rows per tile in forward(): a scratch of about 4 MiB.
  int64_t tile_rows() const;
  std::vector<float> bias_;   // float bias (FLOAT and W8A8_DYNAMIC)
  float input_scale_ = 1, input_offset_ = 0;  // W8A8
  std::vector<float> deq_scale_;              // W8A8 [out]
  std::vector<int32_t> quant_bias_;           // W8A8 [out]
  std::vector<float> weight_scale_;           // int8 kinds [out]
};

}  // namespace st::model
