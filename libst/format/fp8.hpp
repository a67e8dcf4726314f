// Block-scaled FP8 weights as DeepSeek-V3 / R1 ship them, and the one place a tensor's stored
// bytes become fp32 values (FloatDecoder): every tool that reads float weights goes through it.
//
// The layout (DeepSeek-V3 README_WEIGHTS.md "FP8 Weight Documentation"; inference/kernel.py
// weight_dequant, inference/fp8_cast_bf16.py):
//   W            F8_E4M3 (or F8_E5M2) [rows, cols]
//   W_scale_inv  F32 [ceil(rows / 128), ceil(cols / 128)], row-major
// where W_scale_inv is the weight's name with "_scale_inv" appended ("x.weight" ->
// "x.weight_scale_inv"). Element (r, c) of the real weight is
//   fp32(W[r, c]) * W_scale_inv[r / 128, c / 128]        (the product in fp32, rounded to nearest even)
// A block cut short by the edge of a shape that is not a multiple of 128 uses its block's scale
// like any other (DeepSeek padded it to 128 before taking the scale and removed the padding after).
// DeepSeek's cast then rounds the product to bf16, the model's dtype (config.json torch_dtype):
// the tools read an FP8 weight as those values, so an FP8 release and its cast to that dtype give
// every tool the same numbers. config.json carries
//   "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
//                           "weight_block_size": [128, 128]}
// In DeepSeek-V3's release every decoder linear is FP8 except the MoE router (mlp.gate, BF16);
// embeddings, lm_head, norms and the MTP layer's eh_proj are BF16, e_score_correction_bias F32.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/core/dtype.hpp"
#include "libst/core/error.hpp"
#include "libst/format/safetensors.hpp"

namespace st {

constexpr int64_t kFp8Block = 128;
constexpr std::string_view kScaleInvSuffix = "_scale_inv";

// F8_E4M3 and F8_E5M2: the FP8 kinds a block-scaled weight may have.
bool is_block_fp8(DType t);
// The shape of a weight's block scales: [ceil(rows / 128), ceil(cols / 128)] (empty unless 2-D).
std::vector<int64_t> block_scale_shape(const std::vector<int64_t>& weight_shape);
// Checks a weight and its scale_inv against the layout: the weight 2-D, the scale F32 of
// block_scale_shape. Errc::format naming what is wrong (no file or tensor; callers add them).
Status check_block_scale_pair(const TensorInfo& weight, const TensorInfo& scale_inv);
// The model dtype config.json names ("torch_dtype" or "dtype": float16 / bfloat16 / float32),
// else BF16: the dtype an FP8 weight's values are rounded to when read.
DType fp8_model_dtype(const nlohmann::json& config);

// How a tensor's stored bytes become fp32 values, a range of rows at a time: a plain conversion
// of its dtype, or for a block-scaled FP8 weight each value times its block's scale, rounded to
// `logical` (F32: the exact fp32 product). Rows are dim 0; a 0-D or 1-D tensor is one row.
class FloatDecoder {
 public:
  FloatDecoder() = default;
  // A plain dtype (F16, BF16, F32, F64, the integers, unscaled F8). Errc::unsupported otherwise.
  static Result<FloatDecoder> plain(DType dtype, const std::vector<int64_t>& shape);
  // A block-scaled FP8 weight [rows, cols] with its scales (block_scale_shape, row-major).
  static FloatDecoder block_fp8(DType dtype, int64_t rows, int64_t cols, std::vector<float> scale_inv, DType logical);

  DType stored() const { return stored_; }
  // The dtype the values are exact in: the stored one, or what FP8 rounds to.
  DType logical() const { return logical_; }
  bool block_scaled() const { return !scale_inv_.empty(); }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // The same decoder rounding FP8 products to another dtype (F32: unrounded).
  FloatDecoder rounding_to(DType logical) const;

  // Rows [r0, r1) of the tensor whose bytes begin at `tensor`, into dst ((r1 - r0) * cols values).
  void rows(const uint8_t* tensor, int64_t r0, int64_t r1, float* dst) const;
  // Rows [r0, r1), columns [c0, c1) into dst ((r1 - r0) * (c1 - c0) values, row-major): the same
  // values as rows() gives there.
  void tile(const uint8_t* tensor, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst) const;
  // All of it, into dst (rows() * cols() values) or a new vector; rows in parallel (weights are the
  // big tensors).
  void all(const uint8_t* tensor, float* dst) const;
  std::vector<float> all(const uint8_t* tensor) const;

 private:
  DType stored_ = DType::F32, logical_ = DType::F32;
  int64_t rows_ = 0, cols_ = 0;
  std::vector<float> scale_inv_;  // [ceil(rows/128), ceil(cols/128)]; empty for a plain dtype
};

}  // namespace st
