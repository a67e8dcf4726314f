// Activation statistics for quantization (the st-calibrate stats file, libst/stats.hpp):
// per decoder linear input min/max/per-channel absmax/sum of squares/tokens, and per attention
// block the per-head absmax of q, k, v (standard) or of absorbed q and the KV latent (MLA).
#pragma once

#include <functional>

#include "libst/core/callbacks.hpp"
#include "libst/model/model.hpp"
#include "libst/data/tokens.hpp"
#include "libst/format/stats.hpp"

namespace st::model {

// An Observer that accumulates ActivationStats of every linear the forward pass reports (the
// decoder layers' linears; lm_head is not reported). Attention tensors written, for block A:
//   standard: A.q_absmax [heads], A.k_absmax [kv_heads], A.v_absmax [kv_heads]
//   MLA:      A.q_absmax [heads] (q_nope · W_UK, over kv_lora_rank), A.kv_absmax [1]
// and, per head, the max over sequences of msModelSlim's FA3 statistic and of the root mean square:
//   A.q_recall, A.k_recall (MLA: A.kv_recall): max(|lo|, |hi|) of the shortest window [lo, hi]
//     holding int(0.9999 n) of the head's n values in one sequence (its recall window; v: none,
//     msModelSlim's ratio for v is 1, the absmax)
//   A.q_rms, A.k_rms, A.v_rms (MLA: A.q_rms, A.kv_rms): sqrt(mean x^2) over one sequence
constexpr double kFaRecall = 0.9999;  // msModelSlim's recall ratio for FA3's q and k

class StatsCollector : public Observer {
 public:
  void on_linear_input(const std::string& name, const float* x, int64_t rows, int64_t cols) override;
  bool wants_attention() const override { return true; }
  void on_attention(const std::string& block, const char* what, float* x, int64_t rows, int64_t heads,
                    int64_t dim) override;
  ActivationStats& stats() { return stats_; }

 private:
  std::vector<float>& per_head(const std::string& name, int64_t heads);  // created zero
  void absmax_per_head(const std::string& name, const float* x, int64_t rows, int64_t heads, int64_t dim);
  void window_per_head(const std::string& recall, const std::string& rms, const float* x, int64_t rows, int64_t heads,
                       int64_t dim);
  ActivationStats stats_;
};

// Runs every sequence through the model and returns the statistics, with metadata
// st.stats.samples, st.stats.seq_len (longest sequence), st.stats.model and the data's
// provenance (record_provenance: path, hash, and for text the tokenizer and packing). Progress:
// sequences, tokens.
Result<ActivationStats> calibrate(Model& model, const TokenData& data, const ProgressFn& progress = {});

}  // namespace st::model
