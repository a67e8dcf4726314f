// What st-inspect computes: tensor listings with summaries, streamed per-tensor statistics,
// and differences between two checkpoints or two quant descriptions. No printing here: the
// results are values, and the format_* / *_json functions turn them into text for the tool.
//
// Statistics: min, max, mean, std (population, ddof = 0) and absmax are taken over the finite
// elements; NaN and Inf elements are counted apart; zeros are counted over all elements.
// Elements are cut into fixed chunks merged in order (Chan's parallel variance), so results
// are identical for any number of threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "libst/core/callbacks.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/format/description.hpp"
#include "libst/core/dtype.hpp"
#include "libst/core/error.hpp"

namespace st {

struct TensorStats {
  uint64_t count = 0;   // elements
  uint64_t finite = 0;  // elements that are neither NaN nor Inf
  double min = 0, max = 0, mean = 0, std = 0, absmax = 0;  // over finite elements; NaN if none
  uint64_t zeros = 0, nans = 0, infs = 0;
  double zero_fraction() const { return count ? static_cast<double>(zeros) / static_cast<double>(count) : 0.0; }
};

// True for the dtypes statistics are computed for: BOOL, the integers, F16, BF16, F32, F64.
bool stats_supported(DType t);
// Threads used when a caller passes 0: the hardware concurrency, at least 1.
// Statistics of numel elements of dtype t at data (in parallel: st::threads()).
Result<TensorStats> compute_stats(DType t, const uint8_t* data, uint64_t numel);

struct TensorRow {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;
  std::string type;                   // description type; empty when not described
  std::optional<TensorStats> stats;   // with InspectOptions::stats, for supported dtypes
};

struct CountBytes {
  uint64_t tensors = 0;
  uint64_t params = 0;  // elements stored (a packed or compressed tensor counts what it stores)
  uint64_t bytes = 0;
};

struct Summary {
  uint64_t tensors = 0;
  uint64_t params = 0;
  uint64_t bytes = 0;
  std::map<std::string, CountBytes> by_dtype;  // dtype name -> count, bytes
  std::map<std::string, CountBytes> by_type;   // description type -> count, bytes (described only)
  std::string model_quant_type, fa_quant_type, kv_quant_type;  // empty when absent
  void add(const TensorRow& row);
};

// One checkpoint's tensors; a parts directory has one section per part.
struct Section {
  std::string name;  // "" for a plain checkpoint, "part1-of-2" for a part
  std::string layout;
  std::vector<std::string> files;
  std::vector<TensorRow> tensors;  // storage order
  Summary summary;
};

struct Inventory {
  std::string path;
  std::string layout;
  bool parts = false;
  std::vector<Section> sections;
  Summary total;  // over every section
};

struct InspectOptions {
  std::string filter;   // a glob matching whole names (st::glob_match); empty = all
  bool stats = false;   // reads every tensor (streamed, one at a time)
  ProgressFn progress;  // after each tensor when reading data: tensors, bytes
};

// Lists a checkpoint (headers only unless options.stats). A stream opened without random
// access is read through to its end, so a truncated stream is an error here too.
Result<Inventory> inspect(Checkpoint& ckpt, const InspectOptions& options);

// The __metadata__ of every weight file, in storage order (a part's files named
// "partI-of-N/FILE"); only keys the filter glob matches.
struct FileMetadata {
  std::string file;
  Metadata metadata;
  size_t keys = 0;  // in the file, before the filter
};
Result<std::vector<FileMetadata>> file_metadata(const Checkpoint& ckpt, const std::string& filter);

// ---- differences ----

struct ShapeChange {
  std::string name;
  DType dtype_a = DType::F32, dtype_b = DType::F32;
  std::vector<int64_t> shape_a, shape_b;
};
struct StringChange {
  std::string name;  // tensor name, or top-level description key
  std::string a, b;  // "" = absent
};
struct ValueDiff {
  std::string name;
  bool comparable = false;  // same element count, numeric dtypes
  bool identical = false;   // same dtype and the same bytes
  double max_abs_diff = 0;  // Inf where one side is NaN and the other not
  double cosine = 1;        // over pairs of finite values; 1 for two zero tensors
};

struct DiffOptions {
  std::string filter;    // compare only names the glob matches
  bool values = false;   // compare data of tensors present in both
};

struct CheckpointDiff {
  std::string a, b;  // paths
  std::vector<std::string> only_a, only_b;
  std::vector<std::string> only_a_type, only_b_type;  // their description types ("" = not described)
  std::vector<ShapeChange> changed;        // dtype or shape differs
  std::vector<StringChange> changed_type;  // description type differs
  std::vector<StringChange> changed_top;   // top-level description keys
  bool values_compared = false;
  std::vector<ValueDiff> values;           // with DiffOptions::values, tensors in both
  bool equal() const;
};

// Compares two checkpoints. Names in parts directories are qualified "partI-of-N/NAME".
Result<CheckpointDiff> diff_checkpoints(const Checkpoint& a, const Checkpoint& b, const DiffOptions& options);
// Compares two descriptions (tensor types and top-level keys); only_a/only_b hold tensors
// described on one side only.
Result<CheckpointDiff> diff_descriptions(const Description& a, const Description& b, const std::string& filter);

// ---- rendering (text for people, JSON for scripts) ----

std::string format_shape(const std::vector<int64_t>& shape);  // "[4, 256]"
// The table of tensors, then a blank line and the summary; one block per part.
std::string format_inventory(const Inventory& inv);
// One line per difference ("only in A: NAME", "dtype: NAME: F16 -> BF16", ...), then value
// lines with DiffOptions::values (st-inspect --diff --detail).
std::string format_diff(const CheckpointDiff& d);
// The differences summarised (st-inspect --diff): the description's top-level keys first
// (model_quant_type, fa_quant_type, kv_quant_type, then the rest), then per kind of change
// (type, only in A / B, dtype, shape, values) one line per group of tensors with the same change
// and name suffix: its count and the decoder layers it spans (diff_summary.cpp).
std::string format_diff_summary(const CheckpointDiff& d);
// "KEY: VALUE" per key, one block per file (values with control characters as JSON strings).
std::string format_metadata(const std::vector<FileMetadata>& files);
nlohmann::ordered_json inventory_json(const Inventory& inv);
// Every difference, and under "summary" the groups of format_diff_summary.
nlohmann::ordered_json diff_json(const CheckpointDiff& d);
nlohmann::ordered_json metadata_json(const std::string& path, const std::vector<FileMetadata>& files);

}  // namespace st
