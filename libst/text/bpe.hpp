// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback and unknown token,
// applied to one pre-token at a time exactly as HF tokenizers' BPE::tokenize does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libst/core/error.hpp"

namespace st::text {

// string -> id without storing the strings twice: slots hold ids, keys are read from the id table.
class VocabIndex {
 public:
  void build(const std::vector<std::string>* tokens);  // tokens[id]; empty strings are holes
  int32_t find(std::string_view key) const;            // -1 when absent

 private:
  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<uint64_t> slots_;
  uint64_t mask_ = 0;
};

struct BpeOptions {
  std::string unk_token;  // empty: none
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class Bpe {
 public:
  // vocab: (token, id) pairs; merges: (left, right) in rank order. Errors name the bad entry.
  static Result<std::unique_ptr<Bpe>> build(std::vector<std::pair<std::string, int32_t>> vocab,
                           const std::vector<std::pair<std::string, std::string>>& merges, const BpeOptions& options);

  // Appends the ids of one pre-token. With bytes = true the piece is raw bytes that the byte-level
  // alphabet maps to symbols (ByteLevel pre-tokenization); otherwise its characters are symbols.
  // A model is always called with the same `bytes` (its cache does not tell them apart).
  void tokenize(std::string_view piece, bool bytes, std::vector<int32_t>& out) const;

  int32_t id_of(std::string_view token) const { return index_.find(token); }
  // The token of an id; nullptr when the vocabulary has none.
  const std::string* token_of(int32_t id) const;
  // Number of entries in the vocabulary (HF's get_vocab_size) and one past the largest id.
  size_t size() const { return entries_; }
  int32_t id_end() const { return static_cast<int32_t>(tokens_.size()); }

  Bpe(const Bpe&) = delete;
  Bpe& operator=(const Bpe&) = delete;

 private:
  Bpe() = default;
  struct Symbol;
  void add_symbol(std::string_view s, std::vector<Symbol>& word, int32_t& pending_unk) const;
  void merge_word(std::string_view piece, bool bytes, std::vector<int32_t>& out) const;
  void tokenize_uncached(std::string_view piece, bool bytes, std::vector<int32_t>& out) const;
  void tokenize_cached(std::string_view piece, bool bytes, std::vector<int32_t>& out) const;
  bool merge_of(int32_t a, int32_t b, uint32_t& rank, int32_t& merged) const;

  std::vector<std::string> tokens_;  // by id
  size_t entries_ = 0;
  VocabIndex index_;
  // Open-addressed (left << 32 | right) -> (rank << 32 | merged id).
  struct MergeSlot {
    uint64_t key, value;
  };
  std::vector<MergeSlot> merges_;
  uint64_t merge_mask_ = 0;
  int32_t byte_symbol_[256];     // id of the byte-level character for each byte, -1 if absent
  std::string byte_char_[256];   // that character (UTF-8)
  int32_t fallback_byte_[256];   // id of "<0xXX>", -1 if absent
  int32_t unk_id_ = -1;
  bool split_at_metaspace_ = false;  // see tokenize()
  BpeOptions options_;
  uint64_t cache_id_ = 0;        // tells this model's entries apart in the per-thread cache
};

// The GPT-2 byte-to-character map of byte-level BPE (printable bytes map to themselves).
char32_t byte_level_char(unsigned char b);

}  // namespace st::text
