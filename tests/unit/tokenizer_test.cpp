// The tokenizer against HF: the real tokenizer.json files of DeepSeek-V3, Llama-3, Qwen3 and
// Llama-2 and the fixtures' own on a varied corpus (expected ids and texts from the HF oracle,
// scripts/make-tokenizer-fixtures.sh), the fixtures' HF reference ids, HF's rules for the features
// those files do not use, and the refusals of what is not supported.
#include <gtest/gtest.h>
#include <zstd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "libst/text/pack.hpp"
#include "libst/text/tokenizer.hpp"
#include "st_test_util.hpp"

namespace {

using nlohmann::json;
using st::text::Tokenizer;
using Ids = std::vector<int32_t>;

std::string dir() { return st_test::fixtures() + "/tokenizers"; }

std::string unzstd(const std::string& bytes) {
  const auto size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return {};
  std::string out(size, '\0');
  const size_t n = ZSTD_decompress(out.data(), out.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(n)) return {};
  out.resize(n);
  return out;
}

std::shared_ptr<const Tokenizer> real(const std::string& name) {
  const std::string d = dir() + "/" + name;
  auto t = Tokenizer::parse(unzstd(st_test::read_bytes(d + "/tokenizer.json.zst")),
                            st_test::read_bytes(d + "/tokenizer_config.json"), d + "/tokenizer.json");
  EXPECT_TRUE(t) << t.error().str();
  return t ? *t : nullptr;
}

std::vector<json> jsonl(const std::string& path) {
  std::vector<json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

Ids encode(const Tokenizer& t, const std::string& text, bool special = false) {
  Ids ids;
  auto s = t.encode(text, special, ids);
  EXPECT_TRUE(s) << s.error().str();
  return ids;
}

// Every corpus line: ids with and without special tokens, and the text of the ids, keeping and
// skipping special tokens, as the oracle gave them.
void check_corpus(const Tokenizer& t, const std::string& name) {
  const auto corpus = jsonl(dir() + "/corpus.jsonl");
  const auto expected = jsonl(dir() + "/expected/" + name + ".jsonl");
  ASSERT_EQ(corpus.size(), expected.size());
  ASSERT_GT(corpus.size(), 150u);
  for (size_t i = 0; i < corpus.size(); ++i) {
    const std::string text = corpus[i]["text"];
    const Ids special = expected[i]["special"].get<Ids>();
    EXPECT_EQ(encode(t, text, true), special) << name << " line " << i + 1;
    EXPECT_EQ(encode(t, text, false), expected[i]["plain"].get<Ids>()) << name << " line " << i + 1;
    auto kept = t.decode(special, false), skipped = t.decode(special, true);
    ASSERT_TRUE(kept && skipped);
    EXPECT_EQ(*kept, expected[i]["decoded"].get<std::string>()) << name << " line " << i + 1;
    EXPECT_EQ(*skipped, expected[i]["decoded_skip"].get<std::string>()) << name << " line " << i + 1;
  }
}

TEST(Tokenizer, DeepSeekV3MatchesHf) { check_corpus(*real("deepseek_v3"), "deepseek_v3"); }
TEST(Tokenizer, Llama3MatchesHf) { check_corpus(*real("llama3"), "llama3"); }
TEST(Tokenizer, Qwen3MatchesHf) { check_corpus(*real("qwen3"), "qwen3"); }
TEST(Tokenizer, Llama2MatchesHf) { check_corpus(*real("llama2"), "llama2"); }

TEST(Tokenizer, FixtureTokenizerMatchesHf) {
  auto t = Tokenizer::load(st_test::fixtures() + "/llama-4m-fp16");
  ASSERT_TRUE(t) << t.error().str();
  check_corpus(**t, "llama-4m-fp16");
  // HF's ids for the fixtures' calibration and evaluation text (add_special_tokens=False).
  for (const char* set : {"calib", "eval"}) {
    const auto texts = jsonl(st_test::fixtures() + "/data/" + set + "_text.jsonl");
    const auto ids = jsonl(st_test::fixtures() + "/reference/" + set + "_text_hf_ids.jsonl");
    ASSERT_EQ(texts.size(), ids.size());
    for (size_t i = 0; i < texts.size(); ++i)
      EXPECT_EQ(encode(**t, texts[i]["text"], false), ids[i]["input_ids"].get<Ids>()) << set << " line " << i + 1;
  }
}

TEST(Tokenizer, SpecialTokensAndEos) {
  auto llama2 = real("llama2"), qwen3 = real("qwen3");
  EXPECT_EQ(llama2->specials_added(), 1u);  // <s>
  EXPECT_EQ(llama2->eos_id(), 2);           // </s>
  EXPECT_EQ(qwen3->specials_added(), 0u);
  EXPECT_EQ(qwen3->eos_id(), 151645);       // <|im_end|>
  EXPECT_EQ(st::text::document_separator(*qwen3, true), Ids{151645});
  EXPECT_EQ(st::text::document_separator(*qwen3, false), Ids{});
  EXPECT_EQ(st::text::document_separator(*llama2, true), Ids{});
}

TEST(Tokenizer, InvalidInput) {
  auto t = *Tokenizer::load(st_test::fixtures() + "/llama-4m-fp16");
  Ids ids;
  auto bad = t->encode(std::string("ok \xC3\x28 no"), false, ids);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "invalid UTF-8 at byte 3");
  for (const char* s : {"\xED\xA0\x80", "\xC0\xAF", "\xF4\x90\x80\x80", "\xE2\x82"})  // surrogate, overlong, > U+10FFFF, cut
    EXPECT_FALSE(t->encode(s, false, ids)) << s;
  auto unknown = t->decode({1 << 30}, false);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().message, "token id 1073741824 is not in the vocabulary");
}

// A small byte-free tokenizer: single characters plus a few merges, to exercise HF's rules for
// what the real files above do not use.
json tiny() {
  json vocab = json::object();
  int id = 0;
  for (const char* c : {"<unk>", "a", "b", "c", "d", " ", "1", "2", "3", "\xE2\x96\x81", "ab", "abc", "<0x41>"})
    vocab[c] = id++;
  return json{{"version", "1.0"},
              {"added_tokens", json::array()},
              {"normalizer", nullptr},
              {"pre_tokenizer", nullptr},
              {"post_processor", nullptr},
              {"decoder", nullptr},
              {"model",
               {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", json::array({json::array({"a", "b"}), "ab c"})},
                {"unk_token", "<unk>"},
                {"fuse_unk", false},
                {"byte_fallback", false}}}};
}

std::shared_ptr<const Tokenizer> make(const json& j, const std::string& config = "") {
  auto t = Tokenizer::parse(j.dump(), config, "tiny.json");
  EXPECT_TRUE(t) << t.error().str();
  return t ? *t : nullptr;
}

json added(const std::string& content, bool lstrip, bool rstrip, bool single_word, bool normalized = false) {
  return {{"id", 100}, {"content", content}, {"single_word", single_word}, {"lstrip", lstrip},
          {"rstrip", rstrip}, {"normalized", normalized}, {"special", true}};
}

TEST(Tokenizer, BpeMergesUnknownsAndFallback) {
  json j = tiny();
  EXPECT_EQ(encode(*make(j), "abcab"), (Ids{11, 10}));
  EXPECT_EQ(encode(*make(j), "axxb"), (Ids{1, 0, 0, 2}));  // one <unk> per unknown character
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(encode(*make(j), "axxb"), (Ids{1, 0, 2}));
  j["model"]["byte_fallback"] = true;
  EXPECT_EQ(encode(*make(j), "aAb"), (Ids{1, 12, 2}));  // 'A' -> <0x41>
  EXPECT_EQ(*make(j)->decode({1, 12, 2}, false), "a <0x41> b");  // no decoder: tokens joined by spaces
}

TEST(Tokenizer, AddedTokenFlags) {
  json j = tiny();
  j["added_tokens"] = json::array({added("<x>", false, false, false)});
  auto t = make(j);
  const int32_t x = 13;  // the first id after the model's 13 entries, whatever the file says
  EXPECT_EQ(encode(*t, "a <x> b"), (Ids{1, 5, x, 5, 2}));
  j["added_tokens"] = json::array({added("<x>", true, true, false)});
  EXPECT_EQ(encode(*make(j), "a  <x>  b"), (Ids{1, x, 2}));  // lstrip and rstrip swallow the spaces
  j["added_tokens"] = json::array({added("bc", false, false, true)});
  EXPECT_EQ(encode(*make(j), "a bc"), (Ids{1, 5, x}));
  EXPECT_EQ(encode(*make(j), "bcd"), (Ids{2, 3, 4}));  // not a single word: left to the model
  j["added_tokens"] = json::array({added("bcd", false, false, false), added("bc", false, false, false)});
  EXPECT_EQ(encode(*make(j), "abcdbc"), (Ids{1, x, x + 1}));  // leftmost-longest
  j["added_tokens"] = json::array({added("ab", false, false, false)});
  EXPECT_EQ(encode(*make(j), "cab"), (Ids{3, 10}));  // a token the model has keeps the model's id
}

TEST(Tokenizer, NormalizerPreTokenizerAndTemplate) {
  json j = tiny();
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", json::array({{{"type", "NFKC"}},
                                                  {{"type", "Replace"},
                                                   {"pattern", {{"String", "d"}}},
                                                   {"content", "c"}}})}};
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}},
                                                       {{"type", "Split"},
                                                        {"pattern", {{"Regex", "\\s+"}}},
                                                        {"behavior", "Removed"},
                                                        {"invert", false}}})}};
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                                 {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
                         {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {7}}, {"tokens", {"<s>"}}}},
                                             {"</s>", {{"id", "</s>"}, {"ids", {8}}, {"tokens", {"</s>"}}}}}}};
  auto t = make(j);
  // "ａｂ" is NFKC "ab"; "d" becomes "c"; digits stand alone; spaces are removed.
  EXPECT_EQ(encode(*t, "\xEF\xBD\x81\xEF\xBD\x82" "d 12"), (Ids{11, 6, 7}));
  EXPECT_EQ(encode(*t, "ab", true), (Ids{7, 10, 8}));
  EXPECT_EQ(t->specials_added(), 2u);
}

TEST(Tokenizer, MetaspaceFirstAndDecoders) {
  json j = tiny();
  j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", "first"},
                        {"split", false}};
  j["decoder"] = {{"type", "Sequence"},
                  {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}},
                                             {"content", " "}},
                                            {{"type", "Fuse"}},
                                            {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}};
  j["added_tokens"] = json::array({added("<x>", false, false, false)});
  auto t = make(j);
  // Only the text at offset 0 of the input gets the prefix.
  EXPECT_EQ(encode(*t, "a b"), (Ids{9, 1, 9, 2}));
  EXPECT_EQ(encode(*t, "<x>a"), (Ids{13, 1}));
  EXPECT_EQ(*t->decode({9, 1, 9, 2}, false), "a b");
}

TEST(Tokenizer, RefusesWhatItDoesNotSupport) {
  auto refused = [](json j, const std::string& what) {
    auto t = Tokenizer::parse(j.dump(), "", "t.json");
    ASSERT_FALSE(t) << what;
    EXPECT_EQ(t.error().file, "t.json");
    EXPECT_NE(t.error().message.find(what), std::string::npos) << t.error().message;
  };
  json j = tiny();
  j["model"]["type"] = "WordPiece";
  refused(j, "model type 'WordPiece' is not supported");
  j = tiny();
  j["model"]["dropout"] = 0.1;
  refused(j, "model option \"dropout\" = 0.1 is not supported");
  j = tiny();
  j["model"]["continuing_subword_prefix"] = "##";
  refused(j, "continuing_subword_prefix");
  j = tiny();
  j["normalizer"] = {{"type", "Lowercase"}};
  refused(j, "normalizer type 'Lowercase' is not supported");
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  refused(j, "pre_tokenizer type 'Whitespace' is not supported");
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "ByteLevel"}}, {{"type", "Digits"}}})}};
  refused(j, "a ByteLevel pre-tokenizer followed by another pre-tokenizer is not supported");
  j = tiny();
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "\\h+"}}}, {"behavior", "Isolated"}, {"invert", false}};
  refused(j, "regex construct '\\h'");
  j = tiny();
  j["decoder"] = {{"type", "CTC"}};
  refused(j, "decoder type 'CTC' is not supported");
  j = tiny();
  j["post_processor"] = {{"type", "Foo"}};
  refused(j, "post_processor type 'Foo' is not supported");
  j = tiny();
  j["truncation"] = {{"max_length", 512}};
  refused(j, "\"truncation\" is not supported");
  j = tiny();
  j["model"]["merges"] = json::array({"a zz"});
  refused(j, "merges: rank 0 ('a zz'): 'zz' is not in the vocabulary");
  auto garbage = Tokenizer::parse("{not json", "", "t.json");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().message, "not valid JSON");
}

TEST(Tokenizer, Packer) {
  st::text::Packer p(3);
  EXPECT_TRUE(p.add({1, 2}).empty());
  auto done = p.add({3, 4, 5, 6, 7});
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0], (Ids{1, 2, 3}));
  EXPECT_EQ(done[1], (Ids{4, 5, 6}));
  EXPECT_EQ(p.pending(), 1u);
}

}  // namespace
