// quant_model_description.json: parsing, classification of keys, round trip, comparison.
#include <gtest/gtest.h>

#include "libst/format/description.hpp"
#include "st_test_util.hpp"

namespace {

const char* kSample = R"({
  "model_quant_type": "W8A8",
  "fa_quant_type": "FAKQuant",
  "version": "1.0.0",
  "model.layers.0.self_attn.quant_type": "INT8",
  "model.embed_tokens.weight": "FLOAT",
  "model.layers.0.self_attn.q_proj.weight": "W8A8",
  "model.layers.0.self_attn.q_proj.deq_scale": "W8A8",
  "model.layers.0.self_attn.fa_q.scale": "FAQuant",
  "model.layers.0.mlp.down_proj.weight": "W8A8_DYNAMIC",
  "model.layers.0.self_attn.k_proj.kv_cache_scale": "C8"
})";

TEST(Description, ParsesTopLevelKeysApartFromTensors) {
  auto d = st::Description::parse(kSample);
  ASSERT_TRUE(d) << d.error().str();
  EXPECT_EQ(d->model_quant_type(), "W8A8");
  EXPECT_EQ(d->top("fa_quant_type"), "FAKQuant");
  EXPECT_EQ(d->top("version"), "1.0.0");
  EXPECT_EQ(d->top("model.layers.0.self_attn.quant_type"), "INT8");
  EXPECT_EQ(d->top_entries().size(), 4u);
  EXPECT_EQ(d->tensor_entries().size(), 6u);
  EXPECT_EQ(d->type_of("model.layers.0.self_attn.fa_q.scale"), "FAQuant");
  EXPECT_EQ(d->type_of("model.layers.0.self_attn.k_proj.kv_cache_scale"), "C8");
  EXPECT_FALSE(d->type_of("model.layers.0.self_attn.quant_type"));
  EXPECT_FALSE(d->type_of("absent"));
  // insertion order is kept
  EXPECT_EQ(d->tensor_entries().front().first, "model.embed_tokens.weight");
}

TEST(Description, QuantTypes) {
  for (const char* t : {"FLOAT", "W8A8", "W8A8S", "W8A8SC", "W8A8_DYNAMIC", "FAQuant", "C8"})
    EXPECT_TRUE(st::is_quant_type(t)) << t;
  EXPECT_FALSE(st::is_quant_type("w8a8"));
  EXPECT_FALSE(st::is_quant_type("INT8"));
  EXPECT_FALSE(st::is_quant_type(""));
}

TEST(Description, DumpParsesBackIdentically) {
  auto d = st::Description::parse(kSample);
  ASSERT_TRUE(d);
  const std::string text = d->dump();
  auto e = st::Description::parse(text);
  ASSERT_TRUE(e) << e.error().str();
  EXPECT_EQ(e->dump(), text);
  EXPECT_EQ(e->top_entries(), d->top_entries());
  EXPECT_EQ(e->tensor_entries(), d->tensor_entries());
  // top-level keys come first
  EXPECT_EQ(text.find("\"model_quant_type\""), text.find('"'));
}

TEST(Description, SetOverwritesInPlace) {
  st::Description d;
  d.set_top("model_quant_type", "W8A8");
  d.set_type("a.weight", "W8A8");
  d.set_type("b.weight", "FLOAT");
  d.set_type("a.weight", "FLOAT");
  EXPECT_EQ(d.tensor_entries().size(), 2u);
  EXPECT_EQ(d.tensor_entries()[0].second, "FLOAT");
  d.set_top("model_quant_type", "W8A8_DYNAMIC");
  EXPECT_EQ(d.model_quant_type(), "W8A8_DYNAMIC");
}

TEST(Description, RefusesMalformedDescriptions) {
  EXPECT_FALSE(st::Description::parse("{"));
  EXPECT_FALSE(st::Description::parse("[]"));
  EXPECT_FALSE(st::Description::parse(R"({"a.weight": "W8A8"})"));  // no model_quant_type
  auto nested = st::Description::parse(R"({"model_quant_type": "W8A8", "a.weight": {"x": 1}})");
  ASSERT_FALSE(nested);
  EXPECT_NE(nested.error().message.find("a.weight"), std::string::npos);
  auto missing = st::Description::load("/nonexistent/quant_model_description.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().file, "/nonexistent/quant_model_description.json");
  st_test::TempDir dir;
  st_test::write_bytes(dir / "d.json", "{\"model_quant_type\": ");
  auto bad = st::Description::load(dir / "d.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().file, dir / "d.json");
}

TEST(Description, LoadReadsAFile) {
  st_test::TempDir dir;
  st_test::write_bytes(dir / "d.json", kSample);
  auto d = st::Description::load(dir / "d.json");
  ASSERT_TRUE(d) << d.error().str();
  EXPECT_EQ(d->type_of("model.layers.0.mlp.down_proj.weight"), "W8A8_DYNAMIC");
}

TEST(Description, CompareFindsEveryKindOfChange) {
  auto a = st::Description::parse(kSample);
  ASSERT_TRUE(a);
  st::Description b = *a;
  EXPECT_TRUE(st::compare(*a, b).empty());
  b.set_top("model_quant_type", "W8A8S");
  b.set_top("kv_quant_type", "C8");
  b.set_type("model.layers.0.mlp.down_proj.weight", "FLOAT");
  b.set_type("lm_head.weight", "FLOAT");
  st::Description c;  // b without the embedding: rebuild
  for (const auto& [k, v] : b.top_entries()) c.set_top(k, v);
  for (const auto& [k, v] : b.tensor_entries())
    if (k != "model.embed_tokens.weight") c.set_type(k, v);
  const auto d = st::compare(*a, c);
  EXPECT_FALSE(d.empty());
  EXPECT_EQ(d.only_a, std::vector<std::string>{"model.embed_tokens.weight"});
  EXPECT_EQ(d.only_b, std::vector<std::string>{"lm_head.weight"});
  ASSERT_EQ(d.changed_type.size(), 1u);
  EXPECT_EQ(d.changed_type[0].first, "model.layers.0.mlp.down_proj.weight");
  EXPECT_EQ(d.changed_type[0].second.first, "W8A8_DYNAMIC");
  EXPECT_EQ(d.changed_type[0].second.second, "FLOAT");
  ASSERT_EQ(d.changed_top.size(), 2u);
  EXPECT_EQ(d.changed_top[0].first, "model_quant_type");
  EXPECT_EQ(d.changed_top[1].first, "kv_quant_type");
  EXPECT_EQ(d.changed_top[1].second.first, "");  // absent in a
}

}  // namespace
