// Side files of a model directory and the config.json an output gets (see side_files.hpp).
#include "libst/format/side_files.hpp"

#include "libst/core/paths.hpp"

namespace st {

bool is_side_file_name(std::string_view name) {
  static const char* const kWeightSuffixes[] = {".safetensors", ".safetensors.index.json", ".xxh3", ".bin",
                                                ".bin.index.json", ".pt", ".pth", ".ckpt", ".h5", ".msgpack",
                                                ".gguf", ".onnx"};
  if (name.empty() || name[0] == '.') return false;
  for (const char* s : kWeightSuffixes)
    if (ends_with(name, s)) return false;
  return name.rfind("quant_model_description", 0) != 0 || name == "quant_model_description.json";
}

const char* torch_dtype_name(DType t) {
  switch (t) {
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    default: return nullptr;
  }
}

std::optional<DType> dtype_from_torch_name(std::string_view name) {
  for (DType t : {DType::F16, DType::BF16, DType::F32, DType::F64})
    if (name == torch_dtype_name(t)) return t;
  return std::nullopt;
}

std::optional<DType> config_dtype(const nlohmann::json& config) {
  for (const char* key : {"torch_dtype", "dtype"})
    if (auto it = config.find(key); it != config.end() && it->is_string())
      if (auto d = dtype_from_torch_name(it->get<std::string>())) return d;
  return std::nullopt;
}

Result<std::string> output_config(const std::string& text, const nlohmann::ordered_json& patch, DType model,
                                  const std::string& file) {
  nlohmann::ordered_json cfg;
  try {
    cfg = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::format, std::string("config.json is not valid JSON: ") + e.what(), file);
  }
  if (!cfg.is_object()) return make_error(Errc::format, "config.json is not a JSON object", file);
  // torch_dtype before the patch's new keys: the same key order whether or not the input had it.
  if (const char* name = torch_dtype_name(model)) {
    cfg["torch_dtype"] = name;
    if (cfg.contains("dtype")) cfg["dtype"] = name;  // transformers 5's key, kept in agreement
  }
  cfg.merge_patch(patch);
  return cfg.dump(2) + "\n";
}

}  // namespace st
