// One way to open every checkpoint layout: a .safetensors file, an HF directory (single or
// sharded with model.safetensors.index.json), a quantized directory, a directory of
// part{i}-of-{n}/ folders, or "-" for a safetensors stream on stdin.
//
// The side files (every non-weight file: config.json, tokenizer files, LICENSE, *.py of auto_map,
// quant_model_description.json, ...; libst/format/side_files.hpp is_side_file_name) travel with
// the checkpoint: from the directory, or, in a stream or a bare file, from __metadata__ entries
// "st.file.<name>" holding the file's text ("st.file64.<name>": its base64, for binary files).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/format/description.hpp"
#include "libst/format/fp8.hpp"
#include "libst/format/safetensors.hpp"

namespace st {

enum class Layout { file, hf_single, hf_sharded, quantized, parts, stream };
const char* layout_name(Layout l);

// __metadata__ key prefixes under which a stream carries a side file: its text, or, for bytes that
// are not UTF-8 (a JSON string cannot hold them: tokenizer.model), their base64.
constexpr std::string_view kSideFilePrefix = "st.file.";
constexpr std::string_view kSideFileBase64Prefix = "st.file64.";
// Adds side file `name` to a stream's __metadata__ under the prefix its bytes need.
void put_side_file(Metadata& m, const std::string& name, const std::string& bytes);
constexpr const char* kDescriptionFile = "quant_model_description.json";
// __metadata__ key of the weight files naming the attention blocks st-quant-w8a8 --fa-fallback kept
// float (comma-separated prefixes): their attention scales are absent on purpose.
constexpr const char* kFaFallbackKey = "st.fa.fallback";

struct TensorEntry {
  const TensorInfo* info = nullptr;
  size_t file = 0;  // index into Checkpoint::files()
  // Block-scaled FP8 (fp8.hpp): on an F8_E4M3 / F8_E5M2 tensor, its "<name>_scale_inv" entry;
  // on that scale entry, the weight it scales. Null otherwise.
  const TensorEntry* scale_inv = nullptr;
  const TensorEntry* scales = nullptr;
  const std::string& name() const { return info->name; }
  bool is_block_scale() const { return scales != nullptr; }
};

class Checkpoint {
 public:
  struct Options {
    // For "-": spool stdin to an unlinked temporary file so tensors can be read in any order.
    // Without it a stream can only be visited once, in order, with for_each().
    bool random_access = true;
  };
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& path, Options options);
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& path) { return open(path, Options{}); }

  Layout layout() const { return layout_; }
  const std::string& path() const { return path_; }
  // Weight files in storage order (one "<stdin>" for a stream).
  const std::vector<std::string>& files() const { return file_names_; }
  // All tensors, file by file, each file in offset order.
  const std::vector<TensorEntry>& tensors() const { return entries_; }
  const TensorEntry* find(std::string_view name) const;
  const Header& header(size_t file) const;

  // Zero-copy bytes of a tensor (not for a stream opened without random access).
  ByteView data(const TensorEntry& e) const;
  void release(const TensorEntry& e) const;
  // How the tensor's bytes become fp32 (fp8.hpp): block-scaled FP8 is dequantized with its
  // scale_inv and rounded to fp8_dtype(). Errors: a non-numeric dtype, an FP8 tensor without its
  // scale_inv, a scale_inv of the wrong dtype or shape or with a value that is not finite.
  Result<FloatDecoder> decoder(const TensorEntry& e) const;
  // The dtype a tensor's values are exact in: fp8_dtype() for block-scaled FP8, else its own.
  DType value_dtype(const TensorEntry& e) const;
  // What block-scaled FP8 weights read as: the model dtype of config.json, else BF16.
  DType fp8_dtype() const { return fp8_model_dtype(config_); }
  bool has_block_fp8() const { return block_fp8_; }
  // The tensor converted to fp32 through decoder(); an error for non-numeric dtypes.
  Result<std::vector<float>> read_f32(const TensorEntry& e) const;
  Result<std::vector<float>> read_f32(std::string_view name) const;

  // Visits every tensor in storage order with its bytes, releasing each after the call.
  // Works for every layout, including a one-pass stream.
  Status for_each(const std::function<Status(const TensorEntry&, ByteView)>& visit);

  // config.json (an empty object when absent).
  const nlohmann::json& config() const { return config_; }
  bool has_config() const { return !config_.empty(); }
  const std::optional<Description>& description() const { return description_; }
  // Side files by name (config.json, tokenizer.json, ..., quant_model_description.json).
  const std::map<std::string, std::string>& side_files() const { return side_files_; }
  // The permission bits a copy of a side file gets: its source file's (symlinks followed), or
  // 0644 for one carried in metadata.
  unsigned side_file_mode(const std::string& name) const;
  // Part checkpoints of a Layout::parts directory (a valid set, libst/format/parts.hpp), rank 0 first.
  const std::vector<std::unique_ptr<Checkpoint>>& parts() const { return parts_; }

 private:
  Checkpoint() = default;
  Status add_file(const std::string& path);
  Status add_indexed_files(const std::string& dir, const std::string& index_path);
  Status index_entries();
  void pair_block_scales();
  Status load_side_files_from_dir(const std::string& dir);
  Status load_side_files_from_metadata(const Metadata& m);
  Status parse_side_files();

  Layout layout_ = Layout::file;
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unique_ptr<StreamReader> stream_;
  std::vector<std::string> file_names_;
  std::vector<TensorEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
  nlohmann::json config_ = nlohmann::json::object();
  std::optional<Description> description_;
  std::map<std::string, std::string> side_files_;
  std::map<std::string, unsigned> side_file_modes_;
  std::vector<std::unique_ptr<Checkpoint>> parts_;
  bool block_fp8_ = false;
};

// The weight files' __metadata__ entries an output keeps ("format": "pt" and the like): all but
// st-tools' own "st."-prefixed keys (side files, checksums, shard recipes).
Metadata carried_metadata(const Checkpoint& c);

}  // namespace st
