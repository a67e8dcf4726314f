// Packing documents into sequences of exactly N tokens, the shape calibration and perplexity
// sets take. One rule, used by `st-tokenize --pack N` and by text --data with --seq-len N:
//   1. each document is encoded as st-tokenize writes it: with the post-processor's special
//      tokens (HF add_special_tokens=True), or without them (--no-special);
//   2. with special tokens on, when the post-processor adds none around a document, the
//      tokenizer's end-of-sequence token (eos_token of tokenizer_config.json) follows each
//      document instead, so documents stay separated;
//   3. documents whose text is empty are skipped;
//   4. the documents' ids, in input order, are cut into consecutive sequences of N; the last,
//      shorter one is dropped.
#pragma once

#include <cstdint>
#include <vector>

#include "libst/text/tokenizer.hpp"

namespace st::text {

// The ids rule 2 appends after each document (empty when it appends nothing).
std::vector<int32_t> document_separator(const Tokenizer& tok, bool add_special);

class Packer {
 public:
  explicit Packer(size_t n) : n_(n) {}
  // Appends a document's ids (separator included); returns the sequences it completes.
  std::vector<std::vector<int32_t>> add(const std::vector<int32_t>& ids);
  // Tokens waiting for a sequence to fill (dropped if no more documents come).
  size_t pending() const { return pending_.size(); }

 private:
  size_t n_;
  std::vector<int32_t> pending_;
};

}  // namespace st::text
