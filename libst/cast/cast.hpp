// st-cast: a float checkpoint in another float dtype, including DeepSeek's FP8 release
// (block-scaled F8_E4M3 weights, libst/format/fp8.hpp) to bf16, f16 or f32.
//
// What converts, tensor by tensor, in input order:
//   a block-scaled FP8 weight   fp32(value) * scale_inv as an fp32 product, rounded to the target
//                               (round-half-to-even); its W_scale_inv is dropped
//   an F16 or BF16 tensor       to the target, round-half-to-even
//   an F32 or F64 tensor        to the target only in a float32 model (no 16-bit or FP8 tensor);
//                               otherwise kept: a 16-bit model keeps such tensors in float32 on
//                               purpose (DeepSeek's e_score_correction_bias, HF's keep-in-fp32)
//   anything else               copied
// config.json loses "quantization_config" and its "torch_dtype" / "dtype" becomes the target's
// name (float16, bfloat16, float32); other side files are copied.
//
// Layout: an HF directory gives a directory of the same weight files (model.safetensors, or the
// same model-0000i-of-0000N shards and a model.safetensors.index.json without the scales); a
// .safetensors file or a stream gives a file. "-" writes a stream (side files in __metadata__).
// Each file keeps its input's __metadata__. Memory: about one tensor.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libst/core/callbacks.hpp"
#include "libst/core/error.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/format/output.hpp"

namespace st {

struct CastOptions {
  DType to = DType::BF16;   // F16, BF16 or F32
  Output* output = nullptr;  // open_output(): a directory for an HF directory input, else a file
                             // or stdout
  ProgressFn progress;  // tensors written, of the total; input bytes
};

struct CastSummary {
  size_t tensors = 0;          // written
  size_t converted = 0;        // of them, changed dtype (FP8 dequantized included)
  size_t dequantized = 0;      // FP8 weights
  size_t scales_dropped = 0;   // their scale_inv tensors
  uint64_t input_bytes = 0, output_bytes = 0;
  std::vector<std::string> files;  // weight files written (final names)
};

// The dtype each input tensor is written in (in input order), and the rewritten side files;
// errors for an input st-cast does not take (quantized, parts) or a bad FP8 pairing.
struct CastPlan {
  std::vector<DType> dtype;  // per Checkpoint::tensors() entry; kept dtype for a dropped scale
  std::vector<bool> keep;    // false for a scale_inv that is dropped
  std::map<std::string, std::string> side_files;
};
Result<CastPlan> plan_cast(const Checkpoint& in, DType to);

// Writes the cast into options.output and commits it.
Result<CastSummary> cast(const Checkpoint& in, const CastOptions& options);

// "bf16" -> BF16, "f16" -> F16, "f32" -> F32; nullopt for anything else.
std::optional<DType> cast_target(std::string_view name);

}  // namespace st
