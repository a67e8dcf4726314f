// The plan of a W8A8 quantization: everything quantize_w8a8 will write, decided before any
// tensor is read, as a value a test can look at. Per linear its scheme (what it becomes), why,
// and for the static schemes its fused group's activation parameters; per input tensor, in
// storage order, the linear it belongs to; the output tensors in write order with their
// description types; the weight files, the description, the side files and the index. The
// layout of each scheme is in quantize.hpp.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/error.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/quant/attention_scales.hpp"
#include "libst/quant/quant_recipe.hpp"
#include "libst/quant/quantize.hpp"
#include "libst/quant/w8a8.hpp"

namespace st {

LinearScheme scheme_of_mode(W8A8Mode mode);  // the scheme of every quantized linear in that mode

constexpr size_t kNoTensor = std::numeric_limits<size_t>::max();

struct PlannedLinear {
  LinearInfo linear;
  LinearScheme scheme = LinearScheme::floating;
  std::string why;              // one line: which default, rule, glob or fallback chose the scheme
  bool borrowed_range = false;  // static: a routed expert without statistics, its range borrowed
  w8a8::ActivationParams act;   // static schemes: its fused group's
  size_t weight = kNoTensor, bias = kNoTensor;  // its input tensors (storage order)
  size_t emit_at = kNoTensor;  // its outputs are written after this input (static: weight and bias read)
  bool quantized() const { return scheme != LinearScheme::floating; }
};

struct PlannedOutput {
  TensorSpec spec;
  std::string type;  // in quant_model_description.json
};

struct PlannedFile {
  std::string name;  // inside the output directory, or "-" for the stream
  std::vector<TensorSpec> specs;
  Metadata metadata;  // __metadata__ (a stream's carries the description and side files)
};

struct QuantPlan {
  W8A8Mode mode = W8A8Mode::w8a8_dynamic;
  DType model = DType::F16;             // the float model's dtype
  CheckpointTypes types;                // model_quant_type, config.json's quantize (mla_ / moe_quantize)
  std::vector<std::string> notes;       // what the user should know of the schemes (quant_recipe.hpp)
  std::vector<PlannedLinear> linears;   // the architecture's order
  std::vector<size_t> linear_of_input;  // per input tensor: index into linears, or kNoTensor
  std::vector<PlannedOutput> outputs;   // write order, attention tensors last
  AttentionScales attention;           // fa_quant: the tensors, and every block's noise and fallback
  std::vector<PlannedFile> files;       // outputs split greedily above max_file_size
  std::string description;              // quant_model_description.json
  std::map<std::string, std::string> side_files;  // config.json (with "quantize"), tokenizer files, ...
  std::string index;                    // the weights' .safetensors.index.json when split, else ""
  std::string index_name;
  size_t linears_quantized = 0, linears_float = 0;
  uint64_t output_bytes = 0;

  const PlannedLinear* linear_of(size_t input) const {
    return linear_of_input[input] == kNoTensor ? nullptr : &linears[linear_of_input[input]];
  }
};

// The input must be a float checkpoint: not quantized (no description, no int8 tensor), not
// part folders.
Status check_float_input(const Checkpoint& ckpt);

// Every linear's scheme and why (quant_recipe.hpp resolve_schemes) for these options: the mode's,
// the scheme rules' and the model's defaults, FLOAT for loader-kept, fallback and --float groups.
Result<SchemePlan> choose_schemes(const Architecture& arch, const QuantizeOptions& options, const std::string& path);

// The whole plan, from the checkpoint's headers, config and side files (no tensor data is read,
// nothing is written), the options and their statistics: checks the input and options, chooses
// every linear's scheme (choose_schemes), checks every statistic a static linear needs and
// computes the activation parameters and the attention scales, and names the files
// (options.output on stdout: one stream carrying the description and side files). options.warn
// hears of routed experts that borrowed another's input range and of the schemes' notes.
Result<QuantPlan> plan_quantization(const Checkpoint& ckpt, const QuantizeOptions& options);

}  // namespace st
