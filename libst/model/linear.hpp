// A linear layer that runs what the checkpoint describes: FLOAT, W8A8 / W8A8S static
// (integer arithmetic of the consumer) or W8A8_DYNAMIC (per-token int8 activations).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libst/checkpoint.hpp"
#include "libst/error.hpp"

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

 private:
  std::string name_;
  int64_t in_ = 0, out_ = 0;
  LinearKind kind_ = LinearKind::floating;
  std::vector<float> w_;      // float weight, or the int8 values as floats
  std::vector<float> bias_;   // float bias (FLOAT and W8A8_DYNAMIC)
  float input_scale_ = 1, input_offset_ = 0;  // W8A8
  std::vector<float> deq_scale_;              // W8A8 [out]
  std::vector<int32_t> quant_bias_;           // W8A8 [out]
  std::vector<float> weight_scale_;           // int8 kinds [out]
};

}  // namespace st::model
