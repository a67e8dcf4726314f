// Activation statistics written by st-calibrate and read by the quantizers.
//
// Stored as a safetensors file. For every linear, keyed by its module prefix P
// (e.g. "model.layers.0.self_attn.q_proj"), describing the linear's INPUT:
//   P.input_min     F32 [1]   minimum over all calibration tokens and channels
//   P.input_max     F32 [1]   maximum
//   P.input_absmax  F32 [k]   per input channel max |x|
//   P.input_sumsq   F64 [k]   per input channel sum of x^2 (Wanda: ||x_j||_2 = sqrt(sumsq))
//   P.tokens        I64 [1]   number of tokens seen
//   P.input_chmin   F32 [k]   per input channel minimum   } optional: st-calibrate writes them,
//   P.input_chmax   F32 [k]   per input channel maximum   } files without them still load
// For every attention block A (e.g. "model.layers.0.self_attn"), what attention quantization
// needs, all F32 (see st-calibrate(1) for each tool's exact tensors):
//   A.<name>        e.g. A.q_absmax [heads], A.k_absmax [kv_heads], A.v_absmax [kv_heads]
// __metadata__: "st.stats.version" = "1", "st.stats.samples", "st.stats.seq_len", "st.stats.model",
// and where the data came from (libst/data/tokens.hpp record_provenance): "st.stats.data",
// "st.stats.data_xxh3", for text "st.stats.tokenizer", "st.stats.tokenizer_xxh3", "st.stats.pack".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "libst/core/error.hpp"
#include "libst/format/safetensors.hpp"

namespace st {

struct LinearStats {
  float min = 0, max = 0;
  std::vector<float> absmax;  // [k]
  std::vector<double> sumsq;  // [k]
  std::vector<float> chmin, chmax;  // [k] each, or empty (older statistics files)
  int64_t tokens = 0;
};

struct ActivationStats {
  std::map<std::string, LinearStats> linears;                  // by linear prefix
  std::map<std::string, std::vector<float>> extra;             // other F32 tensors by full name
  std::map<std::string, std::vector<int64_t>> extra_shapes;    // their shapes
  Metadata metadata;

  const LinearStats* linear(const std::string& prefix) const {
    auto it = linears.find(prefix);
    return it == linears.end() ? nullptr : &it->second;
  }
};

// Loads and checks a statistics file: the layout above, and values that describe real
// activations (finite; ordered ranges; non-negative magnitudes; a linear input range that is not
// all zero or denormal; tokens counted). An error names the file and the offending tensor.
Result<ActivationStats> load_stats(const std::string& path);
Status save_stats(const ActivationStats& stats, const std::string& path);

}  // namespace st
