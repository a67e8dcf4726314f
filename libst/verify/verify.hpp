// Verification of a quantized checkpoint: structure, integrity, arithmetic and, against the
// float model it came from, numerics. Every fault found is a Problem naming file and tensor.
//
// What it checks (formats: DESIGN.md "Quantized output", libst/checksum.hpp):
//   structure   every stored tensor is described and every described tensor is stored; the
//               description's types are known; per linear type the members, dtypes and shapes:
//                 W8A8 / W8A8S   weight I8 [n,k]; deq_scale I64 [n] (fp16 model, fp32 bits in
//                                the low 32 bits) or F32 [n] (bf16 model); quant_bias I32 [n];
//                                input_scale, input_offset [1] in the model dtype; optional
//                                weight_scale, weight_offset [n,1] float
//                 W8A8_DYNAMIC   weight I8 [n,k]; weight_scale, weight_offset [n,1] float
//                 W8A8SC         weight I8 [S]; index I8 [ceil(k/256)*ceil(n/128)*8];
//                                info I64 [5] = [8, 8, k, n, 1]; the W8A8S scale tensors; the
//                                tile stream decodes (libst/w8a8sc/codec.hpp)
//                 FAQuant        <attn>.fa_{q,k,v}.{scale,offset}: [heads,1] for q, [kv_heads,1]
//                                for k and v (MLA/FAKQuant: [heads,1], [1,1], [1,1], fp32),
//                                offsets I8 zeros; fa_quant_type (and MLA "<attn>.quant_type")
//               fused groups (q/k/v, gate/up, q_a/kv_a) are all quantized or all float and share
//               input_scale / input_offset; part folders: all i of n present, same tensor set,
//               same description, same dtypes and shapes (a W8A8SC stream's length may differ);
//               a *.safetensors.index.json lists every tensor in the file holding it
//   integrity   FILE.xxh3 beside each weight file and the per-tensor "st.xxh3" metadata, when
//               present; files that do not parse (truncated, corrupt header)
//   arithmetic  deq_scale = fp32(input_scale * weight_scale) within the stored dtypes' rounding;
//               input_offset an integer in [-128, 127]; scales finite and positive; weight_offset
//               zero; quant_bias = round(b / deq_scale - input_offset * sum_k W_q) with b = 0 when
//               the model has no bias there (llama/mistral/qwen3/deepseek without *_bias in
//               config), or b from the float model with `against`; in part folders a
//               row-parallel linear's quant_bias is whole on the first rank, zero on the others
//   numerics    (with `against`) every int8 weight within half a step of W / weight_scale (the
//               clamp to [-128, 127] allowed; a W8A8S zero counts as pruned); per linear the SQNR
//               and cosine of W_q * weight_scale against W; FLOAT tensors equal to the float model;
//               in part folders each part's rows against their float source rows (st-shard's
//               "st.shard.recipe" metadata says where they came from). A smoothed checkpoint
//               ("st.quant.weights_updated" = "1") compares with the smoothed float weights W'
//               rebuilt from it (verify/smoothing.hpp); in part folders it gets no numerics.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/core/callbacks.hpp"
#include "libst/core/error.hpp"

namespace st {

struct VerifyOptions {
  std::string against;  // float model to compare with ("" = none)
  // Weight files read (and hashed), then linears checked; bytes.
  ProgressFn progress;
};

struct Problem {
  std::string check;  // "structure", "integrity", "arithmetic", "numerics"
  std::string file;   // the file the fault is in (a weight file, the description, a part folder)
  std::string tensor;  // "" when the fault is not in one tensor
  std::string message;
  // "CHECK: 'FILE': tensor 'T': MESSAGE" (parts omitted when empty).
  std::string str() const;
};

struct LinearNumerics {
  std::string name;  // linear prefix (with "partI-of-N/" in front inside part folders)
  std::string type;  // W8A8, W8A8S, W8A8SC, W8A8_DYNAMIC
  double sqnr_db = 0;   // 10 log10(sum W^2 / sum (W - W_q s)^2); +inf when exact
  double cosine = 0;    // of W and W_q s
  double max_step_error = 0;  // max |W_q - W/s| over unclamped, unpruned elements
  uint64_t off_step = 0;      // elements further than half a step from W/s
  uint64_t pruned = 0;        // W8A8S/W8A8SC zeros where W/s rounds to nonzero
  uint64_t elements = 0;
};

struct VerifyReport {
  std::string path;
  std::string layout;  // "quantized", "parts", "stream", "file"
  std::string model_quant_type;
  std::vector<std::string> files;  // weight files checked
  uint64_t tensors = 0;            // tensors checked (all parts)
  uint64_t linears = 0;            // quantized linears checked
  uint64_t file_checksums = 0;     // .xxh3 files checked
  uint64_t tensor_checksums = 0;   // per-tensor hashes checked
  bool against = false;
  std::vector<Problem> problems;
  std::vector<std::string> notes;  // what was not checked, and why
  std::vector<LinearNumerics> numerics;  // with `against`, in checkpoint order
};

// Verifies PATH: a quantized directory, a directory of part{i}-of-{n}/ folders, a .safetensors
// file or "-" (a stream on stdin, spooled to a temporary file). Faults in the checkpoint are
// Problems in the report; an Error means it could not be checked at all (no such path, nothing
// that looks like a checkpoint, an unreadable float model).
Result<VerifyReport> verify(const std::string& path, const VerifyOptions& options);

// The report as one JSON document (stable key order).
nlohmann::ordered_json verify_report_json(const VerifyReport& report, size_t worst);

}  // namespace st
