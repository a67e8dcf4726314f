// Cross-entropy, KL divergence and top-1 agreement over next-token logits.
#include "libst/model/eval.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "libst/model/parallel.hpp"
#include "libst/model/vexp.hpp"

namespace st::model {

double log_sum_exp(const float* x, int64_t n) {
  const float mx = max_of(x, n);
  return double(mx) + std::log(exp_shift_sum(x, n, mx));
}

namespace {

struct RowStats {
  double nll = 0, ref_nll = 0, kl = 0;
  bool agree = false;
};

int64_t argmax(const float* x, int64_t n) { return std::max_element(x, x + n) - x; }

}  // namespace

Result<EvalResult> evaluate(Model& model, const TokenData& data, Model* reference, const EvalProgress& progress) {
  const int64_t V = model.config().vocab;
  if (reference && reference->config().vocab != V)
    return make_error(Errc::usage, "the two models have different vocabulary sizes");
  ST_CHECK(check_tokens(data, model.config()));
  if (reference) ST_CHECK(check_tokens(data, reference->config()));
  EvalResult r;
  r.compared = reference != nullptr;
  std::vector<float> logits, ref_logits;
  std::vector<double> kls;
  double nll = 0, ref_nll = 0, kl = 0;
  int64_t agree = 0;
  for (const auto& seq : data.seqs) {
    const int64_t n = int64_t(seq.size());
    logits.resize(size_t(n * V));
    const auto t0 = std::chrono::steady_clock::now();
    ST_CHECK(model.forward(seq.data(), n, logits.data()));
    r.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (reference) {
      ref_logits.resize(size_t(n * V));
      ST_CHECK(reference->forward(seq.data(), n, ref_logits.data()));
    }
    std::vector<RowStats> rows(size_t(n - 1));
    parallel_for(n - 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const float* l = &logits[size_t(t * V)];
        const int32_t target = seq[size_t(t + 1)];
        const double lse = log_sum_exp(l, V);
        RowStats& s = rows[size_t(t)];
        s.nll = lse - l[target];
        if (!reference) continue;
        const float* rl = &ref_logits[size_t(t * V)];
        const double rlse = log_sum_exp(rl, V);
        s.ref_nll = rlse - rl[target];
        // KL(p || q) = sum p (log p - log q), p from the reference.
        std::vector<float> p(rl, rl + V);
        const double psum = exp_shift_inplace(p.data(), V, float(rlse));
        double k = 0;
        for (int64_t i = 0; i < V; ++i) k += double(p[size_t(i)]) * ((double(rl[i]) - rlse) - (double(l[i]) - lse));
        k /= psum;
        s.kl = std::max(0.0, k);
        s.agree = argmax(l, V) == argmax(rl, V);
      }
    }, 16);
    for (const auto& s : rows) {
      nll += s.nll;
      if (reference) ref_nll += s.ref_nll, kl += s.kl, agree += s.agree, kls.push_back(s.kl);
    }
    r.sequences++;
    r.tokens += n;
    r.predicted += n - 1;
    if (progress) progress(r.sequences, int64_t(data.seqs.size()), r.tokens);
  }
  const double p = double(std::max<int64_t>(1, r.predicted));
  r.nll = nll / p;
  r.perplexity = std::exp(r.nll);
  r.tokens_per_second = r.seconds > 0 ? double(r.tokens) / r.seconds : 0;
  if (reference) {
    r.reference_nll = ref_nll / p;
    r.reference_perplexity = std::exp(r.reference_nll);
    r.kl_mean = kl / p;
    r.top1_agreement = double(agree) / p;
    std::sort(kls.begin(), kls.end());
    if (!kls.empty()) {
      r.kl_max = kls.back();
      // p99: nearest-rank percentile
      const size_t idx = size_t(std::ceil(0.99 * double(kls.size()))) - 1;
      r.kl_p99 = kls[std::min(idx, kls.size() - 1)];
    }
  }
  return r;
}

}  // namespace st::model
