// Running many sequences through a model layer by layer (the shared driver of layer_stream.hpp).
#include "libst/model/layer_stream.hpp"

#include <algorithm>
#include <mutex>

#include "libst/core/parallel.hpp"

namespace st::model {

namespace {

// Progress over layer passes, from whichever worker finishes one.
class PassLog {
 public:
  PassLog(const ProgressFn& progress, uint64_t total) : progress_(progress), total_(total) { report(); }
  void done(size_t tokens) {
    std::lock_guard<std::mutex> lock(mu_);
    ++done_, tokens_ += tokens;
    report();
  }

 private:
  void report() {
    if (progress_) progress_({"layer passes", done_, total_, tokens_, "tokens"});
  }
  const ProgressFn& progress_;
  uint64_t total_, done_ = 0, tokens_ = 0;
  std::mutex mu_;
};

}  // namespace

int layer_run_workers(const TokenData& data) {
  return int(std::max<int64_t>(1, std::min<int64_t>(threads(), int64_t(data.seqs.size()))));
}

Result<std::vector<std::vector<float>>> run_layers(Model& model, const TokenData& data, const LayerRun& run,
                                                   const ProgressFn& progress) {
  ST_CHECK(check_tokens(data, model.config()));
  const int64_t n = int64_t(data.seqs.size()), H = model.config().hidden;
  int64_t longest = 0;
  for (const auto& s : data.seqs) longest = std::max<int64_t>(longest, int64_t(s.size()));
  model.prepare(longest);
  std::vector<std::vector<float>> h(static_cast<size_t>(n));
  ST_CHECK(model.load_embed());
  for (int64_t i = 0; i < n; ++i) {
    const auto& seq = data.seqs[size_t(i)];
    h[size_t(i)].resize(seq.size() * size_t(H));
    model.embed(seq.data(), int64_t(seq.size()), h[size_t(i)].data());
  }
  model.drop_embed();
  auto observer = [&](int w) { return run.observers.empty() ? nullptr : run.observers[size_t(w)]; };
  PassLog log(progress, uint64_t(model.layers()) * uint64_t(n) * (run.revise ? 2 : 1));
  for (size_t li = 0; li < model.layers(); ++li) {
    ST_CHECK(model.load_layer(li));
    if (run.revise) {
      for_each_item(n, [&](int w, int64_t i) {
        std::vector<float> x = h[size_t(i)];  // observed on a copy: the input stays for the second pass
        model.run_layer(li, x.data(), int64_t(x.size()) / H, observer(w));
        log.done(x.size() / size_t(H));
      });
      ST_CHECK(run.revise(li));
    }
    for_each_item(n, [&](int w, int64_t i) {
      auto& x = h[size_t(i)];
      model.run_layer(li, x.data(), int64_t(x.size()) / H, run.revise ? nullptr : observer(w));
      log.done(x.size() / size_t(H));
    });
    model.drop_layer(li);
  }
  return h;
}

}  // namespace st::model
