// Rotary position embeddings as HF transformers computes them (default, linear, llama3, yarn).
#pragma once

#include <vector>

#include "libst/arch/config.hpp"

namespace st::model {

class Rope {
 public:
  // dim: rotary dimensions per head; interleave: DeepSeek's interleaved pair layout.
  Rope(const RopeConfig& cfg, int dim, bool interleave);

  int dim() const { return dim_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  float attention_factor() const { return attention_factor_; }

  // Makes sure cos/sin tables exist for positions [0, n).
  void prepare(int n);
  // Rotates x[0..dim) of one head at position pos in place. With interleave, the pairs
  // (x0,x1),(x2,x3).. are first gathered into halves [x0,x2,..|x1,x3,..] as HF does, and the
  // result stays in that order.
  void apply(float* x, int pos) const;

 private:
  int dim_;
  bool interleave_;
  float attention_factor_ = 1.0f;
  std::vector<float> inv_freq_;
  std::vector<float> cos_, sin_;  // [positions, dim/2]
  int positions_ = 0;
};

}  // namespace st::model
