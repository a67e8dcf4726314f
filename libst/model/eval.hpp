// Perplexity of a model on token sequences and, against a reference model, the KL divergence
// and top-1 agreement of its next-token distributions (like llama-perplexity --kl-divergence).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "libst/core/callbacks.hpp"
#include "libst/model/model.hpp"
#include "libst/data/tokens.hpp"

namespace st::model {

struct EvalResult {
  int64_t sequences = 0;
  int64_t tokens = 0;     // tokens run through the model
  int64_t predicted = 0;  // positions scored: each sequence's length - 1
  double nll = 0;         // mean next-token cross-entropy (nats)
  double perplexity = 0;  // exp(nll)
  double seconds = 0;     // wall time of the whole evaluation (forward passes and scoring)
  double tokens_per_second = 0;  // tokens / seconds (with a reference, both models ran)
  double forward_seconds = 0;    // wall time of the judged model: its layers, then its head (per worker, averaged)
  double forward_flops = 0;      // Model::forward_flops summed over the sequences
  // Only with a reference model:
  bool compared = false;
  double reference_nll = 0, reference_perplexity = 0;
  double kl_mean = 0, kl_p99 = 0, kl_max = 0;  // KL(reference || model) per position, nats
  double top1_agreement = 0;                   // fraction of positions with the same argmax
};

// Runs every sequence through `model` (and `reference`, when given). The data must pass
// check_tokens for both models. Progress: sequences, tokens.
Result<EvalResult> evaluate(Model& model, const TokenData& data, Model* reference, const ProgressFn& progress = {});

// log-softmax helpers over one row of logits (double accumulation).
double log_sum_exp(const float* logits, int64_t n);

}  // namespace st::model
