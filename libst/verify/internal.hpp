// Internals shared by verify.cpp (loading, integrity, report) and the checks (checker.hpp:
// structure, arithmetic, numerics). Not part of the library's interface.
#pragma once

#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/arch/architecture.hpp"
#include "libst/arch/config.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/format/description.hpp"
#include "libst/format/safetensors.hpp"
#include "libst/shard/recipe.hpp"
#include "libst/verify/verify.hpp"

namespace st::verify_detail {

struct Loc {
  size_t file = 0;
  const TensorInfo* info = nullptr;
};

// One quantized checkpoint: a directory, one part folder, a file or a stream.
struct Unit {
  std::string label;      // "" or "part1-of-2"
  std::string desc_file;  // path used in messages about the description
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::vector<std::string> file_names;  // display names, parallel to files
  std::map<std::string, Loc> tensors;
  std::vector<std::string> order;  // tensor names in storage order
  std::optional<Description> desc;
  nlohmann::json config = nlohmann::json::object();
  std::optional<model::ModelConfig> model;  // config.json as libst/arch reads it, when it is valid
  int part = 0, parts = 1;  // 0-based rank among parts
  size_t unreadable = 0;     // weight files that did not parse (their tensors are unknown)
  // What a writer says it did to the weights before rounding them (__metadata__, or inside
  // st-shard's st.shard.source): anti-outlier smoothing rescaled them ("st.quant.weights_updated"
  // = "1": the smoothed weights are rebuilt, smoothing.hpp), or another change such as SparseGPT's
  // updates ("st.sparsify.weights_updated", any other "*.weights_updated" = "1": no half-step check).
  bool smoothed = false, weights_updated = false;
  std::set<std::string> fa_fallback;  // attention blocks kept float on purpose (kFaFallbackKey)
  // st-shard's record from a part folder's weight file, when it agrees with the folder's name.
  std::optional<PartRecord> shard;

  const Loc* find(const std::string& name) const {
    const auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
  }
  const std::string& file_of(const std::string& name) const;
  ByteView data(const Loc& l) const { return files[l.file]->data(*l.info); }
  void release(const Loc& l) const { files[l.file]->release(*l.info); }
};

// Progress through the two phases: weight files read (and hashed), then linears checked.
struct Meter {
  ProgressFn fn;
  Progress at;
  void start(const char* what, uint64_t total) { at = Progress{what, 0, total, 0, "bytes"}; }
  void advance(uint64_t bytes) {
    ++at.done, at.amount += bytes;
    if (fn) fn(at);
  }
};

// Collects problems and notes into the report, and reports progress.
struct Sink {
  VerifyReport* report;
  Meter meter;
  void add(const char* check, const std::string& file, const std::string& tensor, std::string message) {
    report->problems.push_back(Problem{check, file, tensor, std::move(message)});
  }
  void note(std::string n) {
    for (const auto& e : report->notes)
      if (e == n) return;
    report->notes.push_back(std::move(n));
  }
};

// Row sums of a quantized linear's int8 weight, per part, for the cross-part quant_bias check.
struct RowParallelBias {
  std::vector<std::vector<int64_t>> rowsums;  // per part
  std::vector<std::vector<int32_t>> quant_bias;
  std::vector<std::vector<float>> deq_scale;
  std::vector<double> input_offset;
  std::vector<std::string> file;  // quant_bias's file per part
  std::vector<bool> present;      // per part: the linear was read there
  std::optional<std::vector<float>> bias;  // the float bias (whole), when known
};

struct CheckContext {
  Sink sink;
  const Checkpoint* against = nullptr;  // float model, or nullptr
  const Architecture* float_arch = nullptr;  // the float model's, when it has one (smoothing's pairs)
  // prefix -> cross-part data, filled by check_unit for row-parallel linears in part folders.
  std::map<std::string, RowParallelBias> row_parallel;
  uint64_t bias_unknown = 0;
};

// The quantized linears check_unit will check (for progress).
size_t count_linears(const Unit& u);
// Block-scaled FP8 weights and their weight_scale_inv: paired, shaped, finite, no orphan.
void check_block_scales(const Unit& u, Sink& sink);
// Structure, arithmetic and (with ctx.against) numerics of one unit.
void check_unit(const Unit& u, CheckContext& ctx);
// Part-folder rules across units: same tensors, shapes, description; row-parallel quant_bias.
void check_parts(const std::vector<std::unique_ptr<Unit>>& units, CheckContext& ctx);

}  // namespace st::verify_detail
