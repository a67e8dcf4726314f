// The files of a model directory besides its weights, and the config.json an output gets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "libst/core/dtype.hpp"
#include "libst/core/error.hpp"

namespace st {

// Whether a file of a model directory is a side file, carried to every output as it is (config,
// tokenizer, generation config, chat templates, LICENSE, README, auto_map code, ...): every file
// but weights in any format, their indexes and checksums, hidden files and msModelSlim's legacy
// quant_model_description_<type>.json (the output's own description replaces it).
bool is_side_file_name(std::string_view name);

// The torch name of a float dtype as config.json spells it ("float16", "bfloat16", "float32",
// "float64"; nullptr for the others), and back.
const char* torch_dtype_name(DType t);
std::optional<DType> dtype_from_torch_name(std::string_view name);
// The model's float dtype as config.json states it: "torch_dtype", else the newer "dtype".
std::optional<DType> config_dtype(const nlohmann::json& config);

// An output's config.json from the input's text: `patch` merged in (RFC 7386: a null value removes
// the key), and "torch_dtype" (and "dtype" when present) set to the output's float dtype (MindIE
// pins transformers 4.30-4.43, which read torch_dtype, not the newer "dtype" key). Keys keep their order; an error names `file`
// when the text is not a JSON object.
Result<std::string> output_config(const std::string& text, const nlohmann::ordered_json& patch, DType model,
                                  const std::string& file);

}  // namespace st
