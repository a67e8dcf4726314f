// st-tokenize's work as a library call: lines of documents (or ids) in, JSONL out, in order,
// on several threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "libst/text/documents.hpp"
#include "libst/text/lines.hpp"
#include "libst/text/tokenizer.hpp"

namespace st::text {

// The map_lines work of encoding one line's document: job.ids gets its ids (with special
// tokens as asked), followed by `separator` (pack.hpp's rule); a line with no document, or
// (skip_empty) an empty one, is skipped.
void encode_line(const Tokenizer& tok, TextFormat format, bool add_special, const std::vector<int32_t>& separator,
                 bool skip_empty, LineJob& job);

enum class StreamMode {
  encode,  // one {"input_ids": [...]} per document
  count,   // one count per document, then "total N"
  pack,    // {"input_ids": [...]} sequences of exactly `pack` tokens (pack.hpp)
  decode,  // one {"text": "..."} per {"input_ids": [...]} line
};

struct StreamOptions {
  StreamMode mode = StreamMode::encode;
  bool special = true;  // add special tokens; with decode, keep them in the text
  size_t pack = 0;
  std::string input_name = "-";  // decides the text format (documents.hpp)
};

struct StreamSummary {
  int64_t documents = 0, tokens = 0;
  int64_t sequences = 0, dropped = 0;  // pack
};

// write receives the output in pieces (whole lines); its error stops the run.
Result<StreamSummary> tokenize_stream(const Tokenizer& tok, LineReader& in, const StreamOptions& options,
                                      const std::function<Status(std::string_view)>& write);

}  // namespace st::text
