// UTF-8 and Unicode helpers for the tokenizer: validation, code points, lossy decoding,
// normalization forms (utf8proc) and the character classes HF tokenizers tests with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace st::text {

// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code points
// above U+10FFFF are invalid), or npos when the whole text is valid.
size_t invalid_utf8_at(std::string_view s);

// Length in bytes of the UTF-8 sequence starting with lead byte b (1 for a stray byte).
inline size_t utf8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

// The code point at s[i] (s valid UTF-8); i advances past it.
char32_t next_code_point(std::string_view s, size_t& i);
// Appends c as UTF-8.
void append_utf8(std::string& out, char32_t c);

// Bytes to text the way Rust's String::from_utf8_lossy does: each maximal invalid subpart
// becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

enum class NormalForm { nfc, nfd, nfkc, nfkd };
// Unicode normalization (utf8proc). s must be valid UTF-8; ASCII text is returned unchanged.
std::string normalize(std::string_view s, NormalForm form);

// Rust's char::is_whitespace (the White_Space property).
bool is_white_space(char32_t c);
// Rust's char::is_numeric (general categories Nd, Nl, No).
bool is_numeric(char32_t c);

}  // namespace st::text
