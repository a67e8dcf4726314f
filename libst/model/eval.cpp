// Cross-entropy, KL divergence and top-1 agreement over next-token logits, sequences in parallel.
#include "libst/model/eval.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>

#include "libst/core/parallel.hpp"
#include "libst/model/layer_stream.hpp"
#include "libst/model/vexp.hpp"

namespace st::model {

double log_sum_exp(const float* x, int64_t n) {
  const float mx = max_of(x, n);
  return double(mx) + std::log(exp_shift_sum(x, n, mx));
}

namespace {

int64_t argmax(const float* x, int64_t n) { return std::max_element(x, x + n) - x; }

struct SeqResult {
  double nll = 0, ref_nll = 0, kl = 0;
  int64_t agree = 0;
  std::vector<double> kls;
};

// Scores one sequence's logits (and the reference's) into r.
void score(const std::vector<int32_t>& seq, int64_t V, const float* logits, const float* ref, SeqResult& r) {
  const int64_t n = int64_t(seq.size());
  std::vector<float> p;
  for (int64_t t = 0; t + 1 < n; ++t) {
    const float* l = logits + t * V;
    const int32_t target = seq[size_t(t + 1)];
    const double lse = log_sum_exp(l, V);
    r.nll += lse - l[target];
    if (!ref) continue;
    const float* rl = ref + t * V;
    const double rlse = log_sum_exp(rl, V);
    r.ref_nll += rlse - rl[target];
    // KL(p || q) = sum p (log p - log q), p from the reference.
    p.assign(rl, rl + V);
    const double psum = exp_shift_inplace(p.data(), V, float(rlse));
    double k = 0;
    for (int64_t i = 0; i < V; ++i) k += double(p[size_t(i)]) * ((double(rl[i]) - rlse) - (double(l[i]) - lse));
    k = std::max(0.0, k / psum);
    r.kl += k;
    r.kls.push_back(k);
    r.agree += argmax(l, V) == argmax(rl, V);
  }
}

}  // namespace

Result<EvalResult> evaluate(Model& model, const TokenData& data, Model* reference, const ProgressFn& progress) {
  const int64_t V = model.config().vocab;
  if (reference && reference->config().vocab != V)
    return make_error(Errc::usage, "the two models have different vocabulary sizes");
  ST_CHECK(check_tokens(data, model.config()));
  if (reference) ST_CHECK(check_tokens(data, reference->config()));

  // Both models layer by layer up to their last hidden states, then both heads at once: each
  // sequence's two sets of logits are scored together.
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::vector<float>> ref_h;
  if (reference) {
    ST_ASSIGN(ref_h, run_layers(*reference, data, {}, progress));
  }
  const auto f0 = std::chrono::steady_clock::now();
  ST_ASSIGN(std::vector<std::vector<float>> h, run_layers(model, data, {}, progress));
  const double layer_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - f0).count();
  ST_CHECK(model.load_head());
  if (reference) ST_CHECK(reference->load_head());

  const int64_t n_seqs = int64_t(data.seqs.size()), H = model.config().hidden;
  std::vector<SeqResult> results(static_cast<size_t>(n_seqs));
  std::vector<std::vector<float>> logits(static_cast<size_t>(threads())), ref_logits(static_cast<size_t>(threads()));
  std::vector<std::vector<float>> xs(static_cast<size_t>(threads()));
  std::mutex mu;
  uint64_t done = 0, tokens_done = 0;
  std::vector<double> head_secs(static_cast<size_t>(threads()), 0.0);
  if (progress) progress({"sequences", 0, uint64_t(n_seqs), 0, "tokens"});
  const int workers = for_each_item(n_seqs, [&](int w, int64_t i) {
    const auto& seq = data.seqs[size_t(i)];
    const int64_t n = int64_t(seq.size());
    auto& lg = logits[size_t(w)];
    auto& rg = ref_logits[size_t(w)];
    auto& x = xs[size_t(w)];
    lg.resize(size_t(n * V));
    x.resize(size_t(n * H));
    const auto f1 = std::chrono::steady_clock::now();
    model.head(h[size_t(i)].data(), n, x.data(), lg.data());
    head_secs[size_t(w)] += std::chrono::duration<double>(std::chrono::steady_clock::now() - f1).count();
    std::vector<float>().swap(h[size_t(i)]);
    if (reference) {
      rg.resize(size_t(n * V));
      reference->head(ref_h[size_t(i)].data(), n, x.data(), rg.data());
      std::vector<float>().swap(ref_h[size_t(i)]);
    }
    score(seq, V, lg.data(), reference ? rg.data() : nullptr, results[size_t(i)]);
    std::lock_guard<std::mutex> lock(mu);
    ++done, tokens_done += uint64_t(n);
    if (progress) progress({"sequences", done, uint64_t(n_seqs), tokens_done, "tokens"});
  });
  model.drop_head();
  if (reference) reference->drop_head();

  EvalResult r;
  r.compared = reference != nullptr;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.forward_seconds = layer_seconds;
  for (double f : head_secs) r.forward_seconds += f / workers;
  double nll = 0, ref_nll = 0, kl = 0;
  int64_t agree = 0;
  std::vector<double> kls;
  for (size_t i = 0; i < results.size(); ++i) {
    const SeqResult& s = results[i];
    nll += s.nll;
    ref_nll += s.ref_nll, kl += s.kl, agree += s.agree;
    kls.insert(kls.end(), s.kls.begin(), s.kls.end());
    r.sequences++;
    r.tokens += int64_t(data.seqs[i].size());
    r.predicted += int64_t(data.seqs[i].size()) - 1;
    r.forward_flops += model.forward_flops(int64_t(data.seqs[i].size()));
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
      const size_t idx = size_t(std::ceil(0.99 * double(kls.size()))) - 1;  // nearest-rank p99
      r.kl_p99 = kls[std::min(idx, kls.size() - 1)];
    }
  }
  return r;
}

}  // namespace st::model
