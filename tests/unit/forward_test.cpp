// The forward pass against HF transformers' fp32 activations of eval sequence 0 (tokens 0..63).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "libst/format/checkpoint.hpp"
#include "libst/model/model.hpp"

namespace {

using st::model::Model;

struct Capture : st::model::Observer {
  std::map<int, std::vector<float>> hidden;
  void on_hidden(int i, const float* x, int64_t rows, int64_t cols) override {
    hidden[i].assign(x, x + rows * cols);
  }
};

// max |a - b| / max |b|
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, m = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i]))), m = std::max(m, double(std::fabs(b[i])));
  return d / m;
}

void check_model(const std::string& name, double tol) {
  const std::string fx = ST_FIXTURES;
  auto ck = st::Checkpoint::open(fx + "/" + name);
  ASSERT_TRUE(ck) << ck.error().str();
  auto model = Model::load(**ck);
  ASSERT_TRUE(model) << model.error().str();
  auto ref = st::Checkpoint::open(fx + "/reference/activations_" + name + ".safetensors");
  ASSERT_TRUE(ref) << ref.error().str();
  auto ids = (*ref)->read_f32("input_ids");
  ASSERT_TRUE(ids);
  std::vector<int32_t> tokens(ids->begin(), ids->end());
  const auto& cfg = (*model)->config();
  std::vector<float> logits(tokens.size() * size_t(cfg.vocab));
  Capture cap;
  auto st = (*model)->forward(tokens.data(), int64_t(tokens.size()), logits.data(), &cap);
  ASSERT_TRUE(st) << st.error().str();
  for (int i = 0; i <= cfg.layers; ++i) {
    auto want = (*ref)->read_f32("hidden_states." + std::to_string(i));
    ASSERT_TRUE(want);
    ASSERT_EQ(cap.hidden[i].size(), want->size());
    const double err = rel_err(cap.hidden[i], *want);
    std::printf("%s hidden_states.%d rel err %.3g\n", name.c_str(), i, err);
    EXPECT_LT(err, tol) << name << " hidden_states." << i;
  }
  auto want = (*ref)->read_f32("logits");
  ASSERT_TRUE(want);
  EXPECT_LT(rel_err(logits, *want), tol) << name << " logits";
}

TEST(Forward, LlamaMatchesHf) { check_model("llama-4m-fp16", 1e-5); }
TEST(Forward, DeepseekMlaMatchesHf) { check_model("deepseekv3-mla-6m-fp16", 1e-5); }

}  // namespace
