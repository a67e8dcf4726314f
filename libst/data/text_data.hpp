// Text data (JSONL "text" or plain lines) turned into token sequences with a tokenizer.json,
// and the provenance statistics record about any data.
#pragma once

#include "libst/data/tokens.hpp"
#include "libst/text/documents.hpp"

namespace st::model {

// One sequence per document, or with options.seq_len > 0 the documents packed (pack.hpp's rule).
// Documents are encoded with special tokens, on the threads st::threads() allows.
Result<TokenData> load_text(const std::string& path, text::TextFormat format, const DataOptions& options);

}  // namespace st::model
