// A Hugging Face tokenizer.json, read once and used to turn text into token ids (and back)
// exactly as HF `tokenizers` does.
//
// Supported (anything else in the file is refused by name, never approximated):
//   model          BPE (vocab, merges as "a b" or ["a", "b"], unk_token, fuse_unk, byte_fallback,
//                  ignore_merges; dropout null or 0; continuing_subword_prefix and
//                  end_of_word_suffix null or "")
//   normalizer     NFC, NFD, NFKC, NFKD, Prepend, Replace, Strip, Sequence
//   pre_tokenizer  Split (String or Regex pattern, every behavior, invert), Digits, Metaspace,
//                  ByteLevel (last in a Sequence), Sequence
//   post_processor TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence
//   decoder        ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence
//   added_tokens   every flag (single_word, lstrip, rstrip, normalized, special)
//   truncation null; padding null or BatchLongest (no effect on one sequence)
// tokenizer_config.json beside the file, when present, gives the eos_token used for packing.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libst/core/error.hpp"

namespace st::text {

struct TokenizerParts;

class Tokenizer {
 public:
  // path: a tokenizer.json or a directory holding one.
  static Result<std::shared_ptr<const Tokenizer>> load(const std::string& path);
  // From the two files' contents (config_json may be empty); `path` names them in messages.
  static Result<std::shared_ptr<const Tokenizer>> parse(std::string_view json, std::string_view config_json,
                                                        const std::string& path);
  ~Tokenizer();

  // Appends the ids of text, as HF's encode(text, add_special_tokens). Text must be valid UTF-8
  // (an error gives the byte offset of the first invalid sequence). Safe from several threads.
  Status encode(std::string_view text, bool add_special, std::vector<int32_t>& ids) const;
  // The text of ids, as HF's decode(ids, skip_special_tokens). An id the tokenizer does not
  // know is an error.
  Result<std::string> decode(const std::vector<int32_t>& ids, bool skip_special) const;

  // The tokenizer.json this came from.
  const std::string& path() const { return path_; }
  // One past the largest id (model vocabulary and added tokens).
  int32_t id_end() const;
  // How many ids the post-processor adds around one sequence when special tokens are added.
  size_t specials_added() const;
  // tokenizer_config.json's eos_token, when it names a token of this tokenizer; else -1.
  int32_t eos_id() const { return eos_id_; }

 private:
  Tokenizer();
  std::string path_;
  std::unique_ptr<TokenizerParts> parts_;
  int32_t eos_id_ = -1;
};

// The tokenizer.json a path names: the file itself, or DIR/tokenizer.json.
std::string tokenizer_json_path(const std::string& path);

}  // namespace st::text
