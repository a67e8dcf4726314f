// What the lines of a text input hold: documents (JSONL {"text": ...} or plain text lines) or
// token ids (JSONL {"input_ids": [...]}), and the JSONL lines the tokenizer writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "libst/core/error.hpp"

namespace st::text {

enum class TextFormat { jsonl, plain };

// *.jsonl and *.json are JSONL, *.txt plain text; any other name (or "-") is JSONL when its
// first line is a JSON object, else plain text.
TextFormat text_format(const std::string& name, std::string_view first_line);

// The document of one line. JSONL: the "text" string of the line's object (other keys are
// ignored); a blank line holds no document (false). Plain text: the line itself, every line a
// document, the empty one too. Text must be valid UTF-8.
Result<bool> document_text(std::string_view line, TextFormat format, std::string& text);

// Token ids of a JSONL line: {"input_ids": [...]} or a bare array of non-negative integers.
Result<std::vector<int32_t>> parse_ids_line(std::string_view line);

// {"input_ids": [1, 2, 3]} (the layout HF's json.dumps writes), without a newline.
void append_ids_json(std::string& out, const std::vector<int32_t>& ids, size_t begin = 0, size_t end = SIZE_MAX);
// {"text": "..."} with the text escaped as JSON, without a newline.
void append_text_json(std::string& out, std::string_view text);

}  // namespace st::text
