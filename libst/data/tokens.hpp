// Token-id data for st-eval and st-calibrate: JSONL with "input_ids" arrays, or raw
// little-endian uint32 ids cut into sequences of a fixed length.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "libst/core/error.hpp"
#include "libst/arch/config.hpp"

namespace st::model {

struct TokenData {
  std::string path;
  std::vector<std::vector<int32_t>> seqs;
  int64_t total_tokens() const {
    int64_t n = 0;
    for (const auto& s : seqs) n += int64_t(s.size());
    return n;
  }
};

// A file named *.jsonl or *.json is JSONL: one JSON object per line with an "input_ids" array
// of non-negative integers (or a bare array); seq_len > 0 cuts each line to its first seq_len ids.
// Any other file is raw little-endian uint32 ids; seq_len (> 0, required) is the sequence length
// and the file must hold a whole number of sequences. samples > 0 keeps the first `samples`.
// Errors: unreadable or malformed file, no sequences, a sequence shorter than 2 tokens.
Result<TokenData> load_tokens(const std::string& path, int64_t seq_len, int64_t samples);

// True when load_tokens reads the file as JSONL (by its name), so no --seq-len is needed.
bool is_jsonl_path(const std::string& path);

// Every id < vocab and every sequence within max_position_embeddings.
Status check_tokens(const TokenData& data, const ModelConfig& cfg);

}  // namespace st::model
