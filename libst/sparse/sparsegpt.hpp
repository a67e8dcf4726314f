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

// Gram matrices (k x k, row-major, double) of every quantized linear's input, one per fused
// group (keyed by group id: members share their input), from running the float model on the
// first `samples` sequences of a token file (see libst/data/tokens.hpp; seq_len for raw ids).
struct GramSet {
  std::map<std::string, std::vector<double>> by_group;
  std::map<std::string, int64_t> dim;  // k per group
  int64_t sequences = 0, tokens = 0;
  // Which data: the file's name and XXH3-64, and for text the tokenizer's XXH3-64 and the
  // packing length (recorded in the output's __metadata__ by sparsify).
  std::string data_name;
  uint64_t data_hash = 0, tokenizer_hash = 0;
  int64_t packed = 0;
};
// The damping (0.01, times the mean of diag H) and the column block (128) above.
constexpr double kSparseGptDamp = 0.01;
constexpr int64_t kSparseGptBlock = 128;
// Bytes collect_gram holds at its peak: one k x k double matrix per quantizable fused group, per
// worker thread of the forward pass (their sums are merged at the end).
uint64_t gram_bytes(const Architecture& arch, int workers);

// progress: "layers loaded" (the float model), then "sequences" of the forward pass with their tokens.
Result<GramSet> collect_gram(const Checkpoint& ckpt, const Architecture& arch, const std::string& data_path,
                             const model::DataOptions& data_options, const ProgressFn& progress = {});

// Prunes W (fp32 [n, k]) in place as above. H: k x k Gram (not modified). Returns the number of
// weights zeroed. Errors: H not positive definite even after damping (Errc::numeric).
// Rows run in parallel (st::threads()).
Result<uint64_t> sparsegpt_prune(float* w, int64_t n, int64_t k, const double* gram, const PruneSpec& spec);

}  // namespace st
