// What a tokenizer.json holds once read: the stages in order, for tokenizer.cpp to run.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "libst/text/added_vocab.hpp"
#include "libst/text/bpe.hpp"
#include "libst/text/pipeline.hpp"

namespace st::text {

struct TokenizerParts {
  std::vector<Normalizer> normalizers;
  std::vector<PreTokenizer> pre_tokenizers;
  bool bytes = false;  // the last pre-tokenizer is ByteLevel: the model reads pieces as bytes
  std::unique_ptr<Bpe> model;
  AddedVocab added;
  std::unordered_map<int32_t, std::string> added_text;  // id -> what decode shows for it
  std::unordered_set<std::string> special;              // contents of special added tokens
  std::unordered_map<std::string, int32_t> added_ids;   // content -> id
  std::vector<int32_t> prefix, suffix;  // the post-processor's ids around a sequence
  bool has_decoder = false;
  std::vector<Decoder> decoders;
  int32_t id_end = 0;

  int32_t id_of(std::string_view token) const;  // added token or model vocabulary; -1 if neither
};

// Reads tokenizer.json's text. Errors say which field is malformed or which feature is not
// supported (Errc::unsupported), without a file name (the caller adds it).
Result<std::unique_ptr<TokenizerParts>> parse_tokenizer_json(std::string_view json);

}  // namespace st::text
