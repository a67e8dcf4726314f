// SparseGPT pruning: input Gram matrices from the forward pass, then OBS-compensated masks.
#include "libst/sparse/sparsegpt.hpp"

#include <cblas.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <set>
#include <utility>

#include "libst/model/layer_stream.hpp"
#include "libst/model/model.hpp"
#include "libst/core/parallel.hpp"
#include "libst/data/tokens.hpp"

namespace st {
namespace {

// Accumulates x^T x (upper triangle) per fused group, for the group's first member only.
class GramObserver : public model::Observer {
 public:
  explicit GramObserver(const Architecture& arch) : arch_(arch) {}
  void on_linear_input(const std::string& name, const float* x, int64_t rows, int64_t cols) override {
    const LinearInfo* l = arch_.linear(name);
    if (!l || l->float_by_default || rows <= 0) return;
    const auto members = arch_.group(l->group);
    if (members.empty() || members.front()->prefix != name) return;
    auto& acc = gram[l->group];
    acc.resize(static_cast<size_t>(cols * cols), 0.0);
    tmp_.resize(static_cast<size_t>(cols * cols));
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(cols), static_cast<int>(rows), 1.f, x,
                static_cast<int>(cols), 0.f, tmp_.data(), static_cast<int>(cols));
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = i; j < cols; ++j) acc[i * cols + j] += tmp_[i * cols + j];
  }
  std::map<std::string, std::vector<double>> gram;

 private:
  const Architecture& arch_;
  std::vector<float> tmp_;
};

// LAPACK (OpenBLAS ships it): blocked Cholesky factorisation and inverse, column-major.
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dpotri_(const char* uplo, const int* n, double* a, const int* lda, int* info);
}

// U with H^-1 = U^T U (U upper triangular, row-major), from the Gram matrix (its row-major
// upper triangle is read). A row-major upper triangle is LAPACK's column-major lower one, so:
// H = L L^T (dpotrf 'L'), H^-1 from L (dpotri 'L'), H^-1 = C C^T (dpotrf 'L'), and C read
// row-major is C^T = U.
Result<std::vector<double>> inverse_cholesky_upper(std::vector<double> h, int64_t k) {
  const int n = static_cast<int>(k);
  int info = 0;
  dpotrf_("L", &n, h.data(), &n, &info);
  if (info != 0) return make_error(Errc::numeric, "input Gram matrix is not positive definite");
  dpotri_("L", &n, h.data(), &n, &info);
  if (info != 0) return make_error(Errc::numeric, "input Gram matrix is singular");
  dpotrf_("L", &n, h.data(), &n, &info);
  if (info != 0) return make_error(Errc::numeric, "inverse Gram matrix is not positive definite");
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < i; ++j) h[i * k + j] = 0;  // row-major lower: leftovers of the input
  return h;
}

// Per-thread scratch of the row loop.
struct RowScratch {
  explicit RowScratch(int64_t k) : row(size_t(k)), score(size_t(k)), mask(size_t(k)) {}
  std::vector<double> row, score;
  std::vector<char> prot, mask;
  std::vector<int32_t> cand;
};

// One row wr [k] pruned with OBS compensation (U: upper Cholesky factor of H^-1; dead: input
// channels no token reached). Returns the number of weights zeroed.
uint64_t prune_row_obs(float* wr, int64_t k, const std::vector<double>& u, const std::vector<char>& dead,
                       const PruneSpec& spec, RowScratch& t) {
  const bool nm = spec.method == SparsifyMethod::nm;
  const int64_t M = spec.nm_m, B = nm ? M * ((kSparseGptBlock + M - 1) / M) : kSparseGptBlock;
  std::vector<double>& row = t.row;
  for (int64_t j = 0; j < k; ++j) row[j] = dead[j] ? 0.0 : wr[j];
  mark_protected(row.data(), k, spec.protect, t.prot, t.cand);
  std::fill(t.mask.begin(), t.mask.end(), 0);
  auto mask = [&t](int32_t j) { t.mask[j] = 1; };
  uint64_t pruned = 0;
  for (int64_t i1 = 0; i1 < k; i1 += B) {
    const int64_t i2 = std::min(k, i1 + B);
    for (int64_t j = i1; j < i2; ++j) {
      const double d = u[j * k + j];
      t.score[j] = row[j] * row[j] / (d * d);
    }
    if (!nm) pick_lowest(t.score.data(), i1, i2, t.prot, prune_quota(spec, i2 - i1), t.cand, mask);
    for (int64_t g0 = i1; nm && g0 < i2; g0 += M) {
      const int64_t len = std::min(M, i2 - g0);
      pick_lowest(t.score.data(), g0, g0 + len, t.prot, prune_quota(spec, len), t.cand, mask);
    }
    for (int64_t j = i1; j < i2; ++j) {
      if (!t.mask[j]) continue;
      const double err = row[j] / u[j * k + j];
      const double* uj = &u[j * k];
      for (int64_t l = j + 1; l < k; ++l) row[l] -= err * uj[l];
      row[j] = 0;
      ++pruned;
    }
  }
  for (int64_t j = 0; j < k; ++j) wr[j] = t.mask[j] || dead[j] ? 0.f : static_cast<float>(row[j]);
  return pruned;
}

}  // namespace

uint64_t gram_bytes(const Architecture& arch, int workers) {
  std::map<int, uint64_t> per_layer;
  std::set<std::string> seen;
  for (const auto& l : arch.linears())
    if (!l.float_by_default && seen.insert(l.group).second)
      per_layer[l.layer] += static_cast<uint64_t>(l.in_features) * static_cast<uint64_t>(l.in_features) * sizeof(double);
  uint64_t bytes = 0;
  for (const auto& [layer, b] : per_layer) bytes = std::max(bytes, b);
  return bytes * static_cast<uint64_t>(std::max(1, workers));
}

Result<PrunedWeights> PrunedWeights::create(const std::string& dir) {
  std::string path = dir + "/.st-sparsegpt-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) return make_error(Errc::io, std::string("cannot create a temporary file: ") + std::strerror(errno), dir);
  unlink(path.c_str());  // gone with the process, whatever happens
  return PrunedWeights(fd, dir);
}

PrunedWeights::PrunedWeights(PrunedWeights&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), dir_(std::move(o.dir_)), end_(o.end_), where_(std::move(o.where_)) {}

PrunedWeights& PrunedWeights::operator=(PrunedWeights&& o) noexcept {
  std::swap(fd_, o.fd_), std::swap(dir_, o.dir_), std::swap(end_, o.end_), std::swap(where_, o.where_);
  return *this;
}

PrunedWeights::~PrunedWeights() {
  if (fd_ >= 0) close(fd_);
}

Status PrunedWeights::put(const std::string& prefix, const std::vector<float>& w, uint64_t pruned) {
  const auto* p = reinterpret_cast<const char*>(w.data());
  for (uint64_t done = 0, bytes = w.size() * sizeof(float); done < bytes;) {
    const ssize_t n = pwrite(fd_, p + done, bytes - done, off_t(end_ + done));
    if (n <= 0) return make_error(Errc::io, std::string("cannot write pruned weights to a temporary file: ") +
                                                std::strerror(n < 0 ? errno : ENOSPC), dir_, prefix);
    done += uint64_t(n);
  }
  where_[prefix] = {end_, w.size(), pruned};
  end_ += w.size() * sizeof(float);
  return {};
}

Status PrunedWeights::get(const std::string& prefix, std::vector<float>& w) const {
  const Place& at = where_.at(prefix);
  w.resize(at.count);
  auto* p = reinterpret_cast<char*>(w.data());
  for (uint64_t done = 0, bytes = at.count * sizeof(float); done < bytes;) {
    const ssize_t n = pread(fd_, p + done, bytes - done, off_t(at.offset + done));
    if (n <= 0) return make_error(Errc::io, "cannot read pruned weights back from a temporary file", dir_, prefix);
    done += uint64_t(n);
  }
  return {};
}

Result<SparseGptRun> sparsegpt_layers(const Checkpoint& ckpt, const Architecture& arch, const SparseGptData& data,
                                      const PruneSpec& spec, const std::function<bool(const LinearInfo&)>& prune_it,
                                      const std::string& temp_dir, const ProgressFn& progress) {
  // The checkpoint outlives the model: a non-owning handle.
  ST_ASSIGN(auto m, model::Model::open(std::shared_ptr<const Checkpoint>(&ckpt, [](const Checkpoint*) {})));
  ST_ASSIGN(model::TokenData tokens, model::load_tokens(data.path, data.options));
  ST_ASSIGN(PrunedWeights store, PrunedWeights::create(temp_dir));
  std::vector<GramObserver> obs(static_cast<size_t>(model::layer_run_workers(tokens)), GramObserver(arch));
  model::LayerRun run;
  for (auto& o : obs) run.observers.push_back(&o);
  run.revise = [&](size_t li) -> Status {
    // The workers' sums, added in worker order, then freed with the layer.
    auto gram = std::move(obs.front().gram);
    for (size_t w = 1; w < obs.size(); ++w)
      for (auto& [group, acc] : obs[w].gram) {
        auto& dst = gram[group];
        if (dst.empty()) dst = std::move(acc);
        else
          for (size_t i = 0; i < dst.size(); ++i) dst[i] += acc[i];
      }
    for (auto& o : obs) o.gram.clear();
    for (const auto& l : arch.linears()) {
      if (l.layer != static_cast<int>(li) || l.float_by_default || !prune_it(l)) continue;
      const auto g = gram.find(l.group);
      if (g == gram.end()) continue;  // a routed expert no token reached
      model::Linear* lin = m->linear(li, l.prefix);
      if (!lin || lin->in() != l.in_features || lin->out() != l.out_features)
        return make_error(Errc::format, "the model runs no linear of this name and shape", ckpt.path(), l.prefix);
      std::vector<float> w = lin->float_weight();
      auto pruned = sparsegpt_prune(w.data(), l.out_features, l.in_features, g->second.data(), spec);
      if (!pruned) return std::move(pruned.error()).in_file(ckpt.path()).in_tensor(l.weight_name());
      ST_CHECK(store.put(l.prefix, w, *pruned));
      lin->set_weight(w);
    }
    return {};
  };
  ST_CHECK(model::run_layers(*m, tokens, run, progress));
  SparseGptRun r(std::move(store));
  r.sequences = static_cast<int64_t>(tokens.seqs.size());
  r.tokens = tokens.total_tokens();
  r.data_name = std::filesystem::path(data.path).filename().string();
  r.data_hash = tokens.data_hash;
  r.tokenizer_hash = tokens.tokenizer.empty() ? 0 : tokens.tokenizer_hash;
  r.packed = tokens.packed;
  return r;
}

Result<uint64_t> sparsegpt_prune(float* w, int64_t n, int64_t k, const double* gram, const PruneSpec& spec) {
  std::vector<double> h(static_cast<size_t>(k * k));
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = i; j < k; ++j) h[i * k + j] = h[j * k + i] = gram[i * k + j];
  std::vector<char> dead(static_cast<size_t>(k), 0);
  double mean_diag = 0;
  for (int64_t j = 0; j < k; ++j) {
    if (h[j * k + j] == 0) {
      dead[j] = 1;
      h[j * k + j] = 1;
    }
    mean_diag += h[j * k + j];
  }
  mean_diag /= static_cast<double>(std::max<int64_t>(k, 1));
  for (int64_t j = 0; j < k; ++j) h[j * k + j] += kSparseGptDamp * mean_diag;
  ST_ASSIGN(const std::vector<double> u, inverse_cholesky_upper(std::move(h), k));

  std::atomic<uint64_t> total{0};
  parallel_for(n, [&](int64_t r0, int64_t r1) {  // rows are independent: any split gives the same weights
    RowScratch scratch(k);
    uint64_t local = 0;
    for (int64_t r = r0; r < r1; ++r) local += prune_row_obs(w + r * k, k, u, dead, spec, scratch);
    total += local;
  });
  return total.load();
}

}  // namespace st
