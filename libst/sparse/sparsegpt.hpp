// SparseGPT (Frantar & Alistarh, 2023) for st-sparsify: pruning with OBS error compensation
// from each linear's input Gram matrix H = sum_t x_t x_t^T over calibration tokens.
//
// For W [n, k] (rows pruned independently, all sharing H):
//   H += damp * mean(diag H) * I (damp 0.01); a dead input channel (H[j,j] = 0) gets H[j,j] = 1
//   and its weights zeroed; U = upper Cholesky factor of H^-1 (H^-1 = U^T U).
//   Columns are processed left to right in blocks of 128. At the start of a block each row
//   chooses its mask in the block: the floor(ratio * B) columns with the lowest
//   w^2 / U[j,j]^2 (N:M: the M - N lowest in each group of M), never a protected weight.
//   Column j: q = w with masked entries set to 0; err = (w - q) / U[j,j];
//   w[:, j+1..] -= err * U[j, j+1..] (within the block), and at the end of a block the
//   accumulated errors update the columns to its right: W[:, right] -= Err · U[block, right].
// So kept weights move to compensate the pruned ones, in the metric of the inputs the linear sees.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "libst/arch/architecture.hpp"
#include "libst/core/callbacks.hpp"
#include "libst/data/tokens.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/core/error.hpp"
#include "libst/sparse/prune.hpp"

namespace st {

// The damping (0.01, times the mean of diag H) and the column block (128) above.
constexpr double kSparseGptDamp = 0.01;
constexpr int64_t kSparseGptBlock = 128;

// Pruned fp32 weights by linear prefix, kept in an unlinked temporary file until the output
// is written (a model's worth of fp32 weights need not fit in memory).
class PrunedWeights {
 public:
  // A new store in directory dir.
  static Result<PrunedWeights> create(const std::string& dir);
  PrunedWeights(PrunedWeights&& o) noexcept;
  PrunedWeights& operator=(PrunedWeights&& o) noexcept;
  ~PrunedWeights();
  Status put(const std::string& prefix, const std::vector<float>& w, uint64_t pruned);
  bool has(const std::string& prefix) const { return where_.count(prefix) > 0; }
  // The weight put under prefix (has(prefix) first), and how many of its weights were zeroed.
  Status get(const std::string& prefix, std::vector<float>& w) const;
  uint64_t pruned(const std::string& prefix) const { return where_.at(prefix).pruned; }

 private:
  PrunedWeights(int fd, std::string dir) : fd_(fd), dir_(std::move(dir)) {}
  struct Place {
    uint64_t offset = 0, count = 0, pruned = 0;
  };
  int fd_ = -1;
  std::string dir_;
  uint64_t end_ = 0;
  std::map<std::string, Place> where_;
};

// SparseGPT over a whole float model, as the paper runs it: the calibration sequences go through
// the model one decoder layer at a time (libst/model/layer_stream.hpp); each layer's input Gram
// matrices (one per fused group: members share their input) are summed over every token, the
// layer's linears are pruned with them, and the pruned layer gives the next layer its input. One
// layer's Gram matrices (per worker thread) are alive at a time. Linears for which prune_it is
// false keep their weights; a routed expert no token reached is left for the caller.
struct SparseGptRun {
  explicit SparseGptRun(PrunedWeights w) : weights(std::move(w)) {}
  PrunedWeights weights;
  int64_t sequences = 0, tokens = 0;
  // Which data: the file's name and XXH3-64, and for text the tokenizer's XXH3-64 and the
  // packing length (recorded in the output's __metadata__ by sparsify).
  std::string data_name;
  uint64_t data_hash = 0, tokenizer_hash = 0;
  int64_t packed = 0;
};
struct SparseGptData {
  std::string path;              // token file (libst/data/tokens.hpp)
  model::DataOptions options;    // seq_len for raw ids, samples, tokenizer for text
};
// Bytes of Gram matrices held at the peak: the largest layer's k x k double matrices, one per
// quantizable fused group, per worker thread of the forward pass.
uint64_t gram_bytes(const Architecture& arch, int workers);

// progress: "layer passes" (each layer runs every sequence twice: observed, then pruned).
Result<SparseGptRun> sparsegpt_layers(const Checkpoint& ckpt, const Architecture& arch, const SparseGptData& data,
                                      const PruneSpec& spec, const std::function<bool(const LinearInfo&)>& prune_it,
                                      const std::string& temp_dir, const ProgressFn& progress = {});

// Prunes W (fp32 [n, k]) in place as above. H: k x k Gram (not modified). Returns the number of
// weights zeroed. Errors: H not positive definite even after damping (Errc::numeric).
// Rows run in parallel (st::threads()).
Result<uint64_t> sparsegpt_prune(float* w, int64_t n, int64_t k, const double* gram, const PruneSpec& spec);

}  // namespace st
