// libst/shard/recipe: the st.shard.* metadata of part files, read with every size and offset
// checked before use (hostile recipes: huge offsets, zstd bombs, bad numbers).
#include "libst/core/base64.hpp"
#include "libst/shard/recipe.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cstring>
#include <string>

namespace st {
namespace {

Metadata part_md(const std::string& recipe, size_t compress_above = 1 << 20) {
  Metadata md = part_metadata(2, true, recipe, R"({"layout":"hf","files":[{"name":"model.safetensors","metadata":{}}]})",
                              compress_above);
  md[kShardRankKey] = "1";
  return md;
}

std::string error_of(const Result<std::optional<PartRecord>>& r) { return r ? std::string("(ok)") : r.error().message; }

TEST(Recipe, RoundTripsPlainAndCompressed) {
  ShardSource s;
  s.name = "model.layers.0.self_attn.q_proj.weight";
  s.dtype = DType::I8;
  s.shape = {8, 4};
  s.rule.kind = SplitKind::split;
  s.rule.chunks = 2;
  s.into = "model.layers.0.self_attn.query_key_value.weight";
  s.at = 4;
  const std::string text = recipe_json({s});
  for (size_t above : {size_t(1) << 20, size_t(0)}) {
    auto rec = read_part_record(part_md(text, above), "f");
    ASSERT_TRUE(rec) << rec.error().str();
    ASSERT_TRUE(rec->has_value());
    EXPECT_EQ((*rec)->tp, 2);
    EXPECT_EQ((*rec)->rank, 1);
    EXPECT_EQ((*rec)->recipe, text);
    auto entries = parse_recipe((*rec)->recipe, "f");
    ASSERT_TRUE(entries) << entries.error().str();
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_EQ((*entries)[0].at, 4);
    EXPECT_EQ(piece_shape((*entries)[0]), (std::vector<int64_t>{4, 4}));
  }
}

TEST(Recipe, SectionsOfAFusedTensorRoundTrip) {
  ShardSource s;  // a W_pack-like [q 8 | k 4 | v 4] rows, k/v replicated over 2 of 4 ranks
  s.name = "model.layers.0.self_attn.W_pack.weight";
  s.dtype = DType::F16;
  s.shape = {16, 4};
  s.rule.kind = SplitKind::split;
  s.rule.chunks = 4;
  s.rule.sections = {{8, 4}, {4, 2}, {4, 2}};
  s.into = s.name;
  auto entries = parse_recipe(recipe_json({s}), "f");
  ASSERT_TRUE(entries) << entries.error().str();
  const ShardSource& e = (*entries)[0];
  EXPECT_EQ(e.rule.sections, s.rule.sections);
  EXPECT_EQ(piece_shape(e), (std::vector<int64_t>{6, 4}));
  const auto rows = e.rule.rows_of(3, 4, 16);  // q chunk 3, k/v chunk 1
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].first, 6);
  EXPECT_EQ(rows[1].first, 10);
  EXPECT_EQ(rows[2].first, 14);
  EXPECT_EQ(rows[2].count, 2);
}

TEST(Recipe, ZstFrameDeclaringFourGiBIsRefusedBeforeAllocating) {
  // Magic, single-segment descriptor with an 8-byte content size of 4 GiB, one RLE block.
  std::string frame = "\x28\xb5\x2f\xfd\xe0";
  const uint64_t size = uint64_t(4) << 30;
  for (int i = 0; i < 8; ++i) frame += char(size >> (8 * i) & 0xff);
  const uint32_t block = 1 | (1 << 1) | (1000 << 3);
  frame += std::string{char(block & 0xff), char(block >> 8 & 0xff), char(block >> 16 & 0xff), '\0'};
  Metadata md = part_md("[]");
  md.erase("st.shard.recipe");
  md["st.shard.recipe.zst"] = base64_encode(frame);
  const auto r = read_part_record(md, "part.safetensors");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().file, "part.safetensors");
  EXPECT_NE(error_of(r).find("declares 4294967296 bytes from 17 compressed"), std::string::npos) << error_of(r);
}

TEST(Recipe, CompressionRatioIsCapped) {
  // 4 MiB of spaces compresses about 20000x: no recipe does that, a bomb does.
  const auto r = read_part_record(part_md("[" + std::string(4 << 20, ' ') + "]", 0), "f");
  EXPECT_NE(error_of(r).find("ratio 1024"), std::string::npos) << error_of(r);
}

TEST(Recipe, AModelWithHundredsOfThousandsOfTensorsStaysUnderTheCaps) {
  std::vector<ShardSource> sources;
  for (int l = 0; l < 61; ++l)
    for (int e = 0; e < 64; ++e)
      for (const char* p : {"gate_proj", "up_proj", "down_proj"})
        for (const char* t : {"weight", "weight_scale", "weight_offset", "deq_scale", "quant_bias"}) {
          ShardSource s;
          s.name = "model.layers." + std::to_string(l) + ".mlp.experts." + std::to_string(e) + "." + p + "." + t;
          s.dtype = DType::I8;
          s.shape = {2048, 7168};
          s.rule.kind = SplitKind::split;
          s.rule.chunks = 8;
          s.into = s.name;
          sources.push_back(s);
        }
  const std::string text = recipe_json(sources);
  auto rec = read_part_record(part_md(text), "f");
  ASSERT_TRUE(rec) << rec.error().str();
  EXPECT_EQ((*rec)->recipe, text);
}

TEST(Recipe, EntriesThatCannotBeUsedSafelyAreRefused) {
  const std::pair<const char*, const char*> cases[] = {
      {R"([["a",0,"I8",[4,4],"replicate",0,1,"a",9223372036854775806]])", "row offset out of range"},
      {R"([["a",0,"I8",[4,4],"replicate",0,1,"a",-1]])", "row offset out of range"},
      {R"([["a",0,"I8",[-4,4],"replicate",0,1,"a",0]])", "negative dimension or byte size overflow"},
      {R"([["a",0,"F32",[4294967296,4294967296],"replicate",0,1,"a",0]])", "byte size overflow"},
      {R"([["a",0,"I8",[4,4],"split",0,0,"a",0]])", "impossible split"},
      {R"([["a",0,"I8",[4,4],"split",2,2,"a",0]])", "impossible split"},
      {R"([["a",0,"I8",[4,4],"split",0,3,"a",0]])", "impossible split"},
      {R"([["a",0,"F17",[4,4],"replicate",0,1,"a",0]])", "unknown dtype"},
      {R"([["a",0,"I8",[4,4],"sideways",0,1,"a",0]])", "unknown split kind"},
      {R"([["a",0,"I8"]])", "not a 9- or 10-element array"},
      {R"([["a",0,"I8",[6,4],"replicate",0,1,"a",0,[[6,1]]]])", "sections on something that is not a dim-0 split"},
      {R"([["a",0,"I8",[6,4],"split",0,2,"a",0,[[4,2],[1,1]]]])", "sections that do not add up to the rows"},
      {R"([["a",0,"I8",[6,4],"split",0,2,"a",0,[[3,2],[3,2]]]])", "impossible section"},
      {R"([["a",0,"I8",[6,4],"split",0,2,"a",0,[[4,4],[2,2]]]])", "impossible section"},
      {R"([["a",0,"I8",[6,4],"split",0,2,"a",0,[[4,2],[2]]]])", "a section that is not [rows, chunks]"},
      {R"([["a",0,"I8",[4,4],"replicate",0,1,"a",1e30]])", "not an integer"},
      {R"([["a",0,"I8",[4,4],"replicate",0,1,"a",18446744073709551615]])", "not an integer"},
      {R"([["a",0,"I8",[4.5,4],"replicate",0,1,"a",0]])", "not an integer"},
      {R"([["a",-1,"I8",[4,4],"replicate",0,1,"a",0]])", "file index or split dimension out of range"},
      {R"([[[[[["a"]]]]]])", "nests deeper than the format allows"},
      {R"({"a":1})", "not an array"},
  };
  for (const auto& [text, why] : cases) {
    auto r = parse_recipe(text, "f");
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << text << ": " << r.error().message;
    EXPECT_EQ(r.error().file, "f");
  }
}

TEST(Recipe, EntryFitsChecksRowsWithoutOverflow) {
  ShardSource s;
  s.dtype = DType::F16;
  s.shape = {4, 3};
  s.at = 2;
  EXPECT_TRUE(entry_fits(s, DType::F16, {6, 3}));
  EXPECT_FALSE(entry_fits(s, DType::F16, {5, 3}));
  EXPECT_FALSE(entry_fits(s, DType::F16, {6, 4}));
  EXPECT_FALSE(entry_fits(s, DType::BF16, {6, 3}));
  s.at = INT64_MAX - 4;  // the largest parse_recipe lets through
  EXPECT_FALSE(entry_fits(s, DType::F16, {6, 3}));
}

TEST(Recipe, PartNumbersAreStrict) {
  for (const auto& [key, value, why] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"st.shard.tp", "02", "st.shard.tp is '02'"},
           {"st.shard.tp", "0", "not a number in 1..65536"},
           {"st.shard.tp", "99999999999", "not a number in 1..65536"},
           {"st.shard.rank", "2", "st.shard.rank is '2', not a number in 0..1"},
           {"st.shard.rank", "-1", "not a number in 0..1"},
           {"st.shard.version", "2", "this build reads \"1\""}}) {
    Metadata md = part_md("[]");
    md[key] = value;
    const auto r = read_part_record(md, "f");
    EXPECT_NE(error_of(r).find(why), std::string::npos) << key << "=" << value << ": " << error_of(r);
  }
  auto none = read_part_record(Metadata{{"format", "pt"}}, "f");
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->has_value());
}

}  // namespace
}  // namespace st
