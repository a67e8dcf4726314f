// Element types of safetensors and the F16/BF16/F32 conversions every tool needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace st {

// The 22 dtypes the reference safetensors crate knows (safetensors/src/tensor.rs).
enum class DType : uint8_t {
  BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ,
  I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64,
};

std::optional<DType> dtype_from_name(std::string_view name);
const char* dtype_name(DType t);
// Bits per element (4 and 6 for the sub-byte floats).
unsigned dtype_bits(DType t);
// True for F16, BF16, F32, F64: the types a float weight may come in.
bool dtype_is_float(DType t);

// Scalar conversions, round-to-nearest-even; NaN stays NaN (quiet), Inf stays Inf,
// subnormals are exact in both directions where representable.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t b);
uint16_t f32_to_bf16(float f);
// FP8, exactly: F8_E4M3 is float8_e4m3fn (bias 7, no infinities, 0x7f/0xff NaN, max 448);
// F8_E5M2 is the top byte of an F16 (bias 15, IEEE infinities and NaNs).
float f8_e4m3_to_f32(uint8_t b);
float f8_e5m2_to_f32(uint8_t b);

// Element i of type T from bytes that need not be aligned for T (a mapped tensor's data is
// aligned only as its file's offsets happen to be): a memcpy load, never a cast pointer.
template <class T>
T load_unaligned(const void* base, size_t i = 0) {
  T v;
  std::memcpy(&v, static_cast<const unsigned char*>(base) + i * sizeof(T), sizeof(T));
  return v;
}

// Converts n elements of a float or integer dtype to float (F8_E4M3 / F8_E5M2 as their plain
// values, without any scale). Returns false for a dtype it does not convert (sub-byte, the other
// F8 kinds, complex, BOOL).
bool to_f32(DType src_type, const void* src, float* dst, size_t n);
// Converts n floats to F16, BF16 or F32. Returns false for any other dtype.
bool from_f32(DType dst_type, const float* src, void* dst, size_t n);

}  // namespace st
