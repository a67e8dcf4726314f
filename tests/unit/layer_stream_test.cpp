// The layer-streamed driver gives forward()'s logits bit for bit, on a streamed model that drops
// every layer it ran, with and without a revise step between the two passes of each layer.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "libst/core/parallel.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/model/layer_stream.hpp"

namespace {

using st::model::Model;

// Sequences of different lengths (the workers run different amounts of work).
st::model::TokenData sequences() {
  st::model::TokenData d;
  for (int len : {40, 17, 64, 5, 33}) {
    std::vector<int32_t> s;
    for (int t = 0; t < len; ++t) s.push_back((t * 7919 + len * 31) % 1000);
    d.seqs.push_back(s);
  }
  return d;
}

// Counts the rows of linear inputs the observed pass reports.
struct Count : st::model::Observer {
  void on_linear_input(const std::string&, const float*, int64_t rows, int64_t) override { rows_seen += rows; }
  int64_t rows_seen = 0;
};

void check_streamed(const std::string& name, bool revise) {
  const std::string path = std::string(ST_FIXTURES) + "/" + name;
  auto ck = st::Checkpoint::open(path);
  ASSERT_TRUE(ck) << ck.error().str();
  auto loaded = Model::load(**ck);
  ASSERT_TRUE(loaded) << loaded.error().str();
  std::shared_ptr<const st::Checkpoint> shared = std::move(*ck);
  auto streamed = Model::open(shared);
  ASSERT_TRUE(streamed) << streamed.error().str();
  ASSERT_TRUE((*streamed)->streamed());
  const auto data = sequences();
  const int64_t V = (*loaded)->config().vocab, H = (*loaded)->config().hidden;

  std::vector<Count> counts(size_t(st::model::layer_run_workers(data)));
  st::model::LayerRun run;
  for (auto& c : counts) run.observers.push_back(&c);
  size_t revised = 0;
  if (revise) {
    run.revise = [&](size_t li) {
      if (li == revised) ++revised;  // called once per layer, in order
      return st::Status{};
    };
  }
  auto h = st::model::run_layers(**streamed, data, run);
  ASSERT_TRUE(h) << h.error().str();
  if (revise) {
    EXPECT_EQ(revised, (*streamed)->layers());
  }
  int64_t rows = 0;
  for (const auto& c : counts) rows += c.rows_seen;
  EXPECT_GT(rows, 0);
  const std::string first = (*loaded)->linear_names().front();
  EXPECT_EQ((*streamed)->linear(0, first), nullptr) << "a streamed layer stays in memory after its passes";

  // Both on for_each_item's workers, as the tools run them (one thread each: the same GEMMs).
  ASSERT_TRUE((*streamed)->load_head());
  std::vector<int> same(data.seqs.size(), 0);
  (*loaded)->prepare(64);
  st::for_each_item(int64_t(data.seqs.size()), [&](int, int64_t i) {
    const auto& s = data.seqs[size_t(i)];
    const int64_t n = int64_t(s.size());
    std::vector<float> want(size_t(n * V)), got(size_t(n * V)), x(size_t(n * H));
    const bool ran = bool((*loaded)->forward(s.data(), n, want.data()));
    (*streamed)->head((*h)[size_t(i)].data(), n, x.data(), got.data());
    same[size_t(i)] = ran && std::memcmp(want.data(), got.data(), want.size() * 4) == 0;
  });
  for (size_t i = 0; i < same.size(); ++i) EXPECT_TRUE(same[i]) << name << " sequence " << i;
  EXPECT_FALSE((*streamed)->forward(data.seqs[0].data(), 4, std::vector<float>(size_t(4 * V)).data()))
      << "forward() on a streamed model";
}

TEST(LayerStream, LlamaLogitsAsForward) { check_streamed("llama-4m-fp16", false); }
TEST(LayerStream, MlaMoeLogitsAsForward) { check_streamed("deepseekv3-mla-6m-fp16", false); }
TEST(LayerStream, TwoPassesGiveTheSameLogits) {
  st::set_threads(2);
  check_streamed("llama-4m-fp16", true);
  st::set_threads(0);
}

}  // namespace
