// Token data for st-eval, st-calibrate and st-sparsify: token ids (JSONL with "input_ids"
// arrays, or raw little-endian uint32 ids cut into sequences of a fixed length) or text (JSONL
// with a "text" string per line, or plain .txt lines) tokenized with a model's tokenizer.json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "libst/core/callbacks.hpp"
#include "libst/core/error.hpp"
#include "libst/arch/config.hpp"
#include "libst/format/safetensors.hpp"
#include "libst/format/stats_merge.hpp"

namespace st::model {

struct TokenData {
  std::string path;
  std::vector<std::vector<int32_t>> seqs;
  // Where the ids came from (recorded in statistics by record_provenance).
  uint64_t data_hash = 0;       // XXH3-64 of the data file
  std::string tokenizer;        // text data: the tokenizer.json used; empty for ids
  uint64_t tokenizer_hash = 0;  // its XXH3-64
  int64_t packed = 0;           // text data: the length documents were packed to, 0 for one per document
  // select_part: which slice of the data seqs are (count 0: all of it), the index of seqs[0] in
  // the data, and what was cut (every sequence's count and the XXH3-64 of their lengths and ids).
  StatsPart part;
  int64_t first = 0;
  int64_t whole_sequences = 0;
  uint64_t whole_ids_hash = 0;
  int64_t total_tokens() const {
    int64_t n = 0;
    for (const auto& s : seqs) n += int64_t(s.size());
    return n;
  }
};

struct DataOptions {
  // ids JSONL: cut each line to its first seq_len ids. Raw uint32: the sequence length
  // (required). Text: pack the documents into sequences of seq_len (st-tokenize --pack's rule,
  // libst/text/pack.hpp); 0 keeps one sequence per document (st-tokenize's lines).
  int64_t seq_len = 0;
  int64_t samples = 0;    // > 0: keep the first `samples` sequences
  std::string tokenizer;  // text data: a tokenizer.json or a directory holding one
  WarnFn warn = {};       // told when the data holds fewer sequences than `samples` asks for
};

// What a data file holds, by its name and (JSONL) its first line: *.jsonl / *.json hold ids
// ("input_ids" or a bare array) or text ("text"); *.txt is text; any other name raw uint32 ids.
enum class DataFormat { ids_jsonl, text_jsonl, text_plain, raw_ids };
Result<DataFormat> data_format(const std::string& path);

// Text is tokenized with special tokens (HF add_special_tokens=True). Errors: unreadable or
// malformed file, no sequences, a sequence shorter than 2 tokens, text data without a tokenizer.
Result<TokenData> load_tokens(const std::string& path, const DataOptions& options);
Result<TokenData> load_tokens(const std::string& path, int64_t seq_len, int64_t samples);

// True when the file is raw uint32 ids by its name (neither JSONL nor .txt): it needs a length.
bool is_raw_ids_path(const std::string& path);

// The tokenizer a model path implies: the directory itself, or a file's directory.
std::string model_tokenizer(const std::string& model_path);

// Keeps the part.index-th of part.count contiguous slices of the sequences (st-calibrate --part
// i/n): sequences floor((i-1)N/n) to floor(iN/n) - 1, and records what was cut. Error: more parts
// than sequences.
Status select_part(TokenData& data, StatsPart part);

// Every id < vocab and every sequence within max_position_embeddings.
Status check_tokens(const TokenData& data, const ModelConfig& cfg);

// The data's provenance as statistics metadata: st.stats.data (realpath), st.stats.data_xxh3,
// for text st.stats.tokenizer (realpath), st.stats.tokenizer_xxh3 and st.stats.pack, and for a
// part the keys of libst/format/stats_merge.hpp.
void record_provenance(const TokenData& data, Metadata& md);

// The data statistics name, to load the same sequences again (st-sparsify's sparsegpt without
// --data): nullopt when none is recorded; an error naming the recorded file (or tokenizer) when
// it is gone or no longer has the recorded hash, or when the statistics are one part's.
struct RecordedData {
  std::string path;
  DataOptions options;
};
Result<std::optional<RecordedData>> recorded_data(const Metadata& md);

}  // namespace st::model
