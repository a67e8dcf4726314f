// W8A8S <-> W8A8SC checkpoints: compresses every W8A8S weight of every tensor-parallel part
// with the st-tile codec (codec.hpp), and restores the W8A8S parts bit for bit.
//
// Input of compress(): a directory of part{i}-of-{n}/ folders (each a W8A8S quantized
// directory: quant_model_weight_w8a8s.safetensors + quant_model_description.json), or one W8A8S
// quantized directory (TP = 1). The output is MindIE's W8A8SC layout: part{i}-of-{n}/ folders,
// part0-of-1/ for one directory (atb_llm/utils/weights.py Weights.__init__ opens
// part{rank}-of-{world} for w8a8sc at every TP), under the input's side files (config.json,
// tokenizer: models/base/router.py reads them from the root). A bfloat16 model is refused unless
// allowed (MindIE's W8A8SC linear does not take bf16). Per part:
//   - every tensor described "W8A8S" whose name ends in ".weight" (I8 [n, k]) becomes
//       P.weight  I8 [S]      the tile records          described "W8A8SC"
//       P.index   I8 [T * 8]  T = ceil(k/256) * ceil(n/128)   "W8A8SC"
//       P.info    I64 [5]     [8, 8, k, n, 1]           "W8A8SC"
//     (index and info follow their weight in the file and the description);
//   - every other tensor is copied unchanged and keeps its type (input_scale, input_offset,
//     deq_scale, quant_bias, weight_scale, weight_offset stay "W8A8S"; float ones "FLOAT");
//     this is the part0-of-4 description of the MindIE W8A8SC page;
//   - model_quant_type becomes "W8A8SC", the file quant_model_weight_w8a8sc.safetensors;
//   - __metadata__ keeps the input's entries and adds "st.w8a8sc.codec" = "st-tile-v1" and
//     "st.w8a8sc.source_checksums" = "1" or "0" (whether the input carried per-tensor hashes),
//     so that decompress() can write the W8A8S file exactly as it was.
// The side files of each part folder and of the top-level directory (config, tokenizer, ...) are
// copied; weight checksum files (*.xxh3) are written fresh for the new weight files.
//
// decompress() inverts it (part0-of-1 compressed from one directory becomes that directory again):
// .weight/.index/.info become the I8 [n, k] weight again, typed "W8A8S",
// model_quant_type "W8A8S", file quant_model_weight_w8a8s.safetensors. Tensor order,
// description order and metadata are restored, so a W8A8S file that st-tools wrote comes back
// byte for byte.
//
// Memory: one part's compressed weights plus one tensor (the safetensors header is planned
// before the data, so compressed sizes must be known first).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "libst/core/callbacks.hpp"
#include "libst/core/error.hpp"
#include "libst/format/output.hpp"
#include "libst/w8a8sc/codec.hpp"

namespace st::w8a8sc {

struct TensorReport {
  std::string part;  // "part0-of-2", or "" for a single directory
  std::string name;  // the weight tensor
  int64_t n = 0, k = 0;
  uint64_t raw_bytes = 0;         // n * k
  uint64_t compressed_bytes = 0;  // .weight + .index + .info
  uint64_t nonzeros = 0;
  EncodeStats stats;
};

struct DirOptions {
  EncodeOptions codec;
  ProgressFn progress;  // weights compressed or restored, their int8 bytes
  bool allow_bf16 = false;  // compress a bfloat16 model although MindIE's W8A8SC linear refuses it
  bool flat_source = false;  // set by compress_dir: the input is one W8A8S directory
};

struct DirSummary {
  int parts = 0;  // part folders written or read (0: a single directory restored)
  std::vector<TensorReport> tensors;
  uint64_t raw_bytes = 0, compressed_bytes = 0;
};

// Write into the directory output `out` (open_output) and commit it.
Result<DirSummary> compress_dir(const std::string& in, Output& out, const DirOptions& options);
Result<DirSummary> decompress_dir(const std::string& in, Output& out, const DirOptions& options);

constexpr const char* kCodecKey = "st.w8a8sc.codec";
constexpr const char* kCodecName = "st-tile-v1";
constexpr const char* kSourceChecksumsKey = "st.w8a8sc.source_checksums";
constexpr const char* kW8A8SFile = "quant_model_weight_w8a8s.safetensors";
constexpr const char* kW8A8SCFile = "quant_model_weight_w8a8sc.safetensors";

}  // namespace st::w8a8sc
