// Block-scaled FP8 dequantization and plain dtype conversion, row range by row range.
#include "libst/format/fp8.hpp"

#include <algorithm>
#include <array>

#include "libst/core/parallel.hpp"

namespace st {
namespace {

int64_t blocks(int64_t n) { return (n + kFp8Block - 1) / kFp8Block; }

// FP8 byte -> fp32, all 256 values.
const float* f8_table(DType t) {
  static const auto make = [](float (*f)(uint8_t)) {
    std::array<float, 256> a{};
    for (unsigned b = 0; b < 256; ++b) a[b] = f(static_cast<uint8_t>(b));
    return a;
  };
  static const std::array<float, 256> e4m3 = make(f8_e4m3_to_f32), e5m2 = make(f8_e5m2_to_f32);
  return t == DType::F8_E5M2 ? e5m2.data() : e4m3.data();
}

// Rounds fp32 values in place to the nearest `dtype` value (round-half-to-even), kept as fp32.
void round_to(DType dtype, float* v, int64_t n) {
  if (dtype == DType::BF16)
    for (int64_t i = 0; i < n; ++i) v[i] = bf16_to_f32(f32_to_bf16(v[i]));
  else if (dtype == DType::F16)
    for (int64_t i = 0; i < n; ++i) v[i] = f16_to_f32(f32_to_f16(v[i]));
}

}  // namespace

bool is_block_fp8(DType t) { return t == DType::F8_E4M3 || t == DType::F8_E5M2; }

std::vector<int64_t> block_scale_shape(const std::vector<int64_t>& w) {
  if (w.size() != 2) return {};
  return {blocks(w[0]), blocks(w[1])};
}

namespace {
std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

Status check_block_scale_pair(const TensorInfo& w, const TensorInfo& s) {
  if (w.shape.size() != 2)
    return make_error(Errc::format, std::string("block-scaled ") + dtype_name(w.dtype) + " weight must be 2-D, shape is " +
                                        shape_str(w.shape));
  if (s.dtype != DType::F32)
    return make_error(Errc::format, "block scales '" + s.name + "' must be F32, found " + dtype_name(s.dtype));
  const auto want = block_scale_shape(w.shape);
  if (s.shape != want)
    return make_error(Errc::format, "block scales '" + s.name + "' have shape " + shape_str(s.shape) + ", a " +
                                        shape_str(w.shape) + " weight in 128x128 blocks needs " + shape_str(want));
  return Status{};
}

DType fp8_model_dtype(const nlohmann::json& config) {
  for (const char* key : {"torch_dtype", "dtype"}) {
    const auto it = config.find(key);
    if (it == config.end() || !it->is_string()) continue;
    const std::string v = it->get<std::string>();
    if (v == "float16") return DType::F16;
    if (v == "bfloat16") return DType::BF16;
    if (v == "float32") return DType::F32;
  }
  return DType::BF16;
}

Result<FloatDecoder> FloatDecoder::plain(DType dtype, const std::vector<int64_t>& shape) {
  float probe = 0;
  const uint8_t zero[8] = {};
  if (!to_f32(dtype, zero, &probe, 1))
    return make_error(Errc::unsupported, std::string("cannot convert dtype ") + dtype_name(dtype) + " to F32");
  FloatDecoder d;
  d.stored_ = d.logical_ = dtype;
  int64_t n = 1;
  for (int64_t x : shape) n *= x;
  d.rows_ = shape.size() < 2 ? 1 : shape[0];
  d.cols_ = shape.size() < 2 ? n : (d.rows_ ? n / d.rows_ : 0);
  return d;
}

FloatDecoder FloatDecoder::block_fp8(DType dtype, int64_t rows, int64_t cols, std::vector<float> scale_inv,
                                     DType logical) {
  FloatDecoder d;
  d.stored_ = dtype;
  d.logical_ = logical;
  d.rows_ = rows;
  d.cols_ = cols;
  d.scale_inv_ = std::move(scale_inv);
  return d;
}

FloatDecoder FloatDecoder::rounding_to(DType logical) const {
  FloatDecoder d = *this;
  if (block_scaled()) d.logical_ = logical;
  return d;
}

void FloatDecoder::rows(const uint8_t* tensor, int64_t r0, int64_t r1, float* dst) const {
  if (!block_scaled()) {
    const size_t row_bytes = static_cast<size_t>(cols_) * dtype_bits(stored_) / 8;
    to_f32(stored_, tensor + static_cast<size_t>(r0) * row_bytes, dst, static_cast<size_t>((r1 - r0) * cols_));
    return;
  }
  tile(tensor, r0, r1, 0, cols_, dst);
}

void FloatDecoder::tile(const uint8_t* tensor, int64_t r0, int64_t r1, int64_t c0, int64_t c1, float* dst) const {
  const int64_t width = c1 - c0;
  if (!block_scaled()) {
    const size_t bits = dtype_bits(stored_);
    for (int64_t r = r0; r < r1; ++r)
      to_f32(stored_, tensor + static_cast<size_t>(r * cols_ + c0) * bits / 8, dst + (r - r0) * width,
             static_cast<size_t>(width));
    return;
  }
  const float* table = f8_table(stored_);
  const int64_t bc = blocks(cols_);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* src = tensor + r * cols_;
    float* out = dst + (r - r0) * width - c0;
    const float* scale = scale_inv_.data() + (r / kFp8Block) * bc;
    for (int64_t b = c0 / kFp8Block; b * kFp8Block < c1; ++b) {
      const int64_t b0 = std::max(c0, b * kFp8Block), b1 = std::min(c1, (b + 1) * kFp8Block);
      const float s = scale[b];
      for (int64_t c = b0; c < b1; ++c) out[c] = table[src[c]] * s;
    }
    round_to(logical_, out + c0, width);
  }
}

void FloatDecoder::all(const uint8_t* tensor, float* dst) const {
  parallel_for(
      rows_, [&](int64_t r0, int64_t r1) { rows(tensor, r0, r1, dst + r0 * cols_); }, 16);
}

std::vector<float> FloatDecoder::all(const uint8_t* tensor) const {
  std::vector<float> v(static_cast<size_t>(rows_ * cols_));
  all(tensor, v.data());
  return v;
}

}  // namespace st
