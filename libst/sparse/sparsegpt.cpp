// SparseGPT pruning: input Gram matrices from the forward pass, then OBS-compensated masks.
#include "libst/sparse/sparsegpt.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>

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
    dim[l->group] = cols;
  }
  std::map<std::string, std::vector<double>> gram;
  std::map<std::string, int64_t> dim;

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
  uint64_t bytes = 0;
  std::set<std::string> seen;
  for (const auto& l : arch.linears())
    if (!l.float_by_default && seen.insert(l.group).second)
      bytes += static_cast<uint64_t>(l.in_features) * static_cast<uint64_t>(l.in_features) * sizeof(double);
  return bytes * static_cast<uint64_t>(std::max(1, workers));
}

Result<GramSet> collect_gram(const Checkpoint& ckpt, const Architecture& arch, const std::string& data_path,
                             const model::DataOptions& data_options, const ProgressFn& progress) {
  ST_ASSIGN(auto m, model::Model::load(ckpt, progress));
  ST_ASSIGN(model::TokenData data, model::load_tokens(data_path, data_options));
  ST_CHECK(model::check_tokens(data, m->config()));
  int64_t longest = 0;
  for (const auto& s : data.seqs) longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
  m->prepare(longest);
  std::vector<GramObserver> obs(static_cast<size_t>(std::max(1, threads())), GramObserver(arch));
  std::vector<std::vector<float>> logits(obs.size());
  std::mutex mu;
  std::optional<Error> failure;
  const int64_t n = static_cast<int64_t>(data.seqs.size());
  uint64_t done = 0, tokens = 0;
  if (progress) progress({"sequences", 0, uint64_t(n), 0, "tokens"});
  for_each_item(n, [&](int w, int64_t i) {
    const auto& seq = data.seqs[static_cast<size_t>(i)];
    auto& lg = logits[static_cast<size_t>(w)];
    lg.resize(seq.size() * static_cast<size_t>(m->config().vocab));
    Status st = m->forward(seq.data(), static_cast<int64_t>(seq.size()), lg.data(), &obs[static_cast<size_t>(w)]);
    std::lock_guard<std::mutex> lock(mu);
    if (!st && !failure) failure = st.error();
    ++done, tokens += seq.size();
    if (progress) progress({"sequences", done, uint64_t(n), tokens, "tokens"});
  });
  if (failure) return *failure;
  GramSet g;
  g.sequences = n;
  g.tokens = data.total_tokens();
  g.data_name = std::filesystem::path(data_path).filename().string();
  g.data_hash = data.data_hash;
  g.tokenizer_hash = data.tokenizer.empty() ? 0 : data.tokenizer_hash;
  g.packed = data.packed;
  for (auto& o : obs)
    for (auto& [group, acc] : o.gram) {
      auto& dst = g.by_group[group];
      if (dst.empty()) dst = std::move(acc);
      else
        for (size_t i = 0; i < dst.size(); ++i) dst[i] += acc[i];
      g.dim[group] = o.dim[group];
    }
  return g;
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
