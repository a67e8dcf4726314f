// Whole-checkpoint W8A8 / W8A8_DYNAMIC quantization into the MindIE / vllm-ascend layout, each
// linear with its own scheme (quant_recipe.hpp: rules, the model's defaults, the mode's scheme).
//
// Output (directory OUT, or a stream for "-"), named by model_quant_type (quant_recipe.hpp
// checkpoint_types: a DeepSeek mix of W8A8 attention and W8A8_DYNAMIC MLPs is W8A8_DYNAMIC):
//   quant_model_weight_w8a8.safetensors        (W8A8_DYNAMIC: quant_model_weight_w8a8_dynamic…)
//     or, above max_file_size, quant_model_weight_w8a8-0000i-of-0000N.safetensors plus
//     quant_model_weight_w8a8.safetensors.index.json ({"metadata": {"total_size"}, "weight_map"})
//   quant_model_description.json               every tensor typed; model_quant_type first
//   config.json (+ "quantize": "w8a8" | "w8a8_dynamic", as MindIE's loader expects; a DeepSeek
//     mix also "mla_quantize": "w8a8", the attention's loader),
//     and "torch_dtype" (libst/format/side_files.hpp output_config),
//   every other non-weight file of the input (tokenizer, generation config, LICENSE, auto_map code...).
// A stream ("-") is one safetensors file whose __metadata__ carries those files as
// "st.file.<name>" entries (checkpoint.hpp put_side_file).
//
// Tensors, in input storage order; a quantized linear P (weight W [n,k], model dtype D) becomes
//   P.weight I8 [n,k]; P.weight_scale F32 [n,1]; P.weight_offset F32 [n,1] (zeros; not for W8A8S)
//   static only: P.input_scale D [1]; P.input_offset D [1]; P.deq_scale I64 [n] (D = F16) or
//                F32 [n] (D = BF16); P.quant_bias I32 [n]  (the float bias folded in)
//   P.bias, when present, stays float (D [n]) and is typed FLOAT, as msModelSlim writes it
// typed W8A8 / W8A8S / W8A8_DYNAMIC. weight_scale is F32: msModelSlim's weight-format document gives
// fp32 for weight_scale and the same dtype for weight_offset; vllm-ascend casts on load.
// Every other tensor is copied unchanged and typed FLOAT: embeddings, lm_head, norms, the MoE
// router (mlp.gate) and its bias, MLA's kv_b_proj, and every linear kept float by a rule or glob. A fused group
// (architecture.hpp) is quantized or kept float as a whole and shares input_scale/input_offset
// computed from the union of its members' calibration ranges. A routed expert no calibration
// token reached has no statistics: its gate/up borrow the layer's shared-expert input range (else
// the union of the other experts'), its down_proj the union of the other experts' down_proj ranges.
//
// fa_quant adds, after every other tensor, per attention block A but the fa_fallback ones
// (attention_scales.hpp: the statistic fa_stat chooses; the blocks kept float get no tensor and,
// on MLA, no quant_type key, as msModelSlim's rollback writes them), scale = max(m / 127, eps):
//   standard: A.fa_q.scale [heads,1], A.fa_k.scale / A.fa_v.scale [kv_heads,1] in the model
//             dtype; fa_quant_type "FAQuant"
//   MLA:      A.fa_q.scale [heads,1], A.fa_k.scale / A.fa_v.scale [1,1] (both from the KV latent)
//             in F32; fa_quant_type "FAKQuant" and top-level "A.quant_type": "INT8"
// The weight files' __metadata__ "st.fa.fallback" lists the blocks kept float (comma-separated;
// st-verify accepts their missing scales by it).
// each with A.fa_*.offset int8 zeros of the same shape, typed "FAQuant".
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/callbacks.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/format/description.hpp"
#include "libst/format/output.hpp"
#include "libst/core/error.hpp"
#include "libst/format/stats.hpp"
#include "libst/quant/attention_scales.hpp"
#include "libst/quant/quant_recipe.hpp"

namespace st {

struct WeightScales;  // libst/quant/smooth.hpp

// w8a8s: the static layout typed "W8A8S" (st-sparsify: weights pruned by transform_weight).
enum class W8A8Mode { w8a8_static, w8a8_dynamic, w8a8s };

struct QuantizeOptions {
  W8A8Mode mode = W8A8Mode::w8a8_dynamic;
  const ActivationStats* stats = nullptr;  // required for static
  std::string stats_path;                  // names the statistics in errors
  std::vector<std::string> float_globs;    // fnmatch(3) globs on linear prefixes or weight names
  // Linears kept float for a reason the caller names (prefix -> why: automatic fallback); like a
  // --float glob, each keeps its fused group float.
  std::map<std::string, std::string> float_linears;
  // Per-linear schemes (quant_recipe.hpp): the first rule matching a linear decides it; unmatched
  // linears take the model's default rules, then the mode's scheme.
  std::vector<SchemeRule> scheme_rules;
  Output* output = nullptr;                // open_output(): a directory, or stdout for a stream
  uint64_t max_file_size = 0;              // split weights above this many bytes; 0: one file
  bool fa_quant = false;                   // add attention quantization scales (needs stats)
  FaStat fa_stat = FaStat::absmax;         // their statistic (attention_scales.hpp)
  int fa_fallback = 0;                     // attention blocks kept float, the worst estimated first
  // Replacement values (fp32, same shape) for tensors by name, e.g. smoothed norms and biases
  // (smooth.hpp): a float tensor is stored in its own dtype, a linear weight is quantized from
  // these values, a bias folded from them.
  const std::map<std::string, std::vector<float>>* overrides = nullptr;
  // Smoothing's per-linear column / row scales (smooth.hpp), applied to each weight as it is
  // quantized (after overrides, before transform_weight).
  const WeightScales* weight_scales = nullptr;
  // Called with each quantized linear's weight as fp32 [n, k] (after overrides), on the calling
  // thread in storage order, before it is quantized; may change it (st-sparsify prunes here).
  std::function<Status(const LinearInfo&, std::vector<float>& weight)> transform_weight;
  Metadata metadata;  // extra __metadata__ entries for every weight file
  ProgressFn progress;  // input tensors, input bytes
  WarnFn warn;
};

struct QuantizeSummary {
  size_t linears_quantized = 0, linears_float = 0;
  std::map<std::string, size_t> linears_by_type;  // quantized linears per description type
  std::string model_quant_type;
  uint64_t input_bytes = 0, output_bytes = 0;
  std::vector<std::string> files;  // weight files written (final names)
  std::map<std::string, uint64_t> weight_zeros;  // zeros of each quantized linear's int8 weight
};

// Quantizes an open float checkpoint (any layout; a stream opened without random access is
// read once, in order) into options.output and commits it. Refuses an already-quantized input;
// nothing is left at the output path on error.
Result<QuantizeSummary> quantize_w8a8(Checkpoint& ckpt, const QuantizeOptions& options);

// Writes a plan (quant_plan.hpp) made for this checkpoint and these options: quantize_w8a8 is
// plan_quantization, then this.
struct QuantPlan;
Result<QuantizeSummary> write_quantized(Checkpoint& ckpt, const QuantPlan& plan, const QuantizeOptions& options);

// "W8A8", "W8A8_DYNAMIC" or "W8A8S": the scheme of the mode (the weight file is named by the
// plan's model_quant_type, quant_recipe.hpp checkpoint_types).
const char* w8a8_type_name(W8A8Mode mode);

}  // namespace st
