// Token data from text: format detection, one sequence per document or packed, samples, and
// finding recorded data again by path and hash.
#include <gtest/gtest.h>

#include <filesystem>

#include "libst/data/tokens.hpp"
#include "libst/text/tokenizer.hpp"
#include "st_test_util.hpp"

namespace {

using namespace st::model;

std::string tokenizer() { return st_test::fixtures() + "/llama-4m-fp16"; }

TEST(TextData, FormatByNameAndFirstLine) {
  st_test::TempDir d;
  st_test::write_bytes(d / "t.jsonl", "\n{\"text\": \"x\"}\n");
  st_test::write_bytes(d / "i.jsonl", "[1, 2]\n");
  EXPECT_EQ(*data_format(d / "t.jsonl"), DataFormat::text_jsonl);
  EXPECT_EQ(*data_format(d / "i.jsonl"), DataFormat::ids_jsonl);
  EXPECT_EQ(*data_format(d / "a.txt"), DataFormat::text_plain);
  EXPECT_EQ(*data_format(d / "a.u32"), DataFormat::raw_ids);
  EXPECT_TRUE(is_raw_ids_path("x.bin"));
  EXPECT_FALSE(is_raw_ids_path("x.txt"));
}

TEST(TextData, DocumentsOrPacked) {
  st_test::TempDir d;
  st_test::write_bytes(d / "a.txt", "def f(x):\n\n    return x + 1\nclass A: pass\n");
  auto tok = st::text::Tokenizer::load(tokenizer());
  ASSERT_TRUE(tok);
  std::vector<std::vector<int32_t>> docs;
  for (const char* s : {"def f(x):", "    return x + 1", "class A: pass"}) {
    docs.emplace_back();
    ASSERT_TRUE((*tok)->encode(s, true, docs.back()));
  }
  // One sequence per document; the empty line holds none.
  auto per_doc = load_tokens(d / "a.txt", DataOptions{0, 0, tokenizer()});
  ASSERT_TRUE(per_doc) << per_doc.error().str();
  EXPECT_EQ(per_doc->seqs, docs);
  EXPECT_EQ(per_doc->packed, 0);
  EXPECT_NE(per_doc->tokenizer_hash, 0u);
  // Packed: documents joined by <|endoftext|> (id 0), cut into 4s, the rest dropped.
  auto packed = load_tokens(d / "a.txt", DataOptions{4, 0, tokenizer()});
  ASSERT_TRUE(packed) << packed.error().str();
  std::vector<int32_t> flat;
  for (const auto& doc : docs) flat.insert(flat.end(), doc.begin(), doc.end()), flat.push_back(0);
  ASSERT_EQ(packed->seqs.size(), flat.size() / 4);
  for (size_t i = 0; i < packed->seqs.size(); ++i)
    EXPECT_EQ(packed->seqs[i], std::vector<int32_t>(flat.begin() + long(4 * i), flat.begin() + long(4 * i + 4)));
  EXPECT_EQ(load_tokens(d / "a.txt", DataOptions{4, 2, tokenizer()})->seqs.size(), 2u);
  // Text without a tokenizer is an error, not ids.
  auto none = load_tokens(d / "a.txt", 0, 0);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("needs a tokenizer"), std::string::npos);
}

TEST(TextData, RecordedDataFoundAgainByHash) {
  st_test::TempDir d;
  st_test::write_bytes(d / "a.txt", "def f(x):\n    return x\n");
  auto data = load_tokens(d / "a.txt", DataOptions{4, 1, tokenizer()});
  ASSERT_TRUE(data);
  st::Metadata md{{"st.stats.samples", "1"}};
  record_provenance(*data, md);
  auto again = recorded_data(md);
  ASSERT_TRUE(again && *again);
  EXPECT_EQ((*again)->options.seq_len, 4);
  EXPECT_EQ((*again)->options.samples, 1);
  EXPECT_EQ((*again)->options.tokenizer, std::filesystem::canonical(tokenizer() + "/tokenizer.json").string());
  st_test::write_bytes(d / "a.txt", "def g(x):\n    return x\n");
  auto changed = recorded_data(md);
  ASSERT_FALSE(changed) << "the data changed";
  EXPECT_NE(changed.error().message.find("a.txt', has changed"), std::string::npos) << changed.error().message;
  std::filesystem::remove(d / "a.txt");
  auto gone = recorded_data(md);
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message.find("a.txt', does not exist"), std::string::npos) << gone.error().message;
  auto none = recorded_data(st::Metadata{{"st.stats.samples", "1"}});
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none) << "no data recorded";
}

}  // namespace
