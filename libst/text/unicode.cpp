// UTF-8 validation and repair, code points, normalization through utf8proc.
//
// Why utf8proc and not ICU: it is a small C library that works on UTF-8 directly and does
// NFC/NFD/NFKC/NFKD in one call with no data files or converters to set up, which is all the
// tokenizer needs (ICU would mean UTF-16 round trips and a large dependency for the same result).
#include "libst/text/unicode.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace st::text {

namespace {

// Valid second-byte range for a lead byte (Unicode Table 3-7); {0, 0} when b is no lead byte.
struct Range {
  unsigned char lo, hi;
};
Range second_byte_range(unsigned char b) {
  if (b >= 0xC2 && b <= 0xDF) return {0x80, 0xBF};
  if (b == 0xE0) return {0xA0, 0xBF};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {0x80, 0xBF};
  if (b == 0xED) return {0x80, 0x9F};
  if (b == 0xF0) return {0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {0x80, 0xBF};
  if (b == 0xF4) return {0x80, 0x8F};
  return {0, 0};
}

// Bytes of the valid sequence at s[i], or 0 with `maximal` set to the length of the maximal
// invalid subpart (at least 1).
size_t sequence_at(std::string_view s, size_t i, size_t& maximal) {
  const auto b = static_cast<unsigned char>(s[i]);
  if (b < 0x80) return 1;
  const Range r = second_byte_range(b);
  maximal = 1;
  if (r.hi == 0) return 0;
  const size_t need = utf8_len(b);
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return 0;
    const auto c = static_cast<unsigned char>(s[i + k]);
    const bool ok = k == 1 ? (c >= r.lo && c <= r.hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return 0;
    maximal = k + 1;
  }
  return need;
}

}  // namespace

size_t invalid_utf8_at(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // Eight ASCII bytes at a time: most text is mostly ASCII.
    if (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if ((w & 0x8080808080808080ULL) == 0) {
        i += 8;
        continue;
      }
    }
    size_t maximal = 0;
    const size_t n = sequence_at(s, i, maximal);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  const size_t n = utf8_len(b);
  char32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
  for (size_t k = 1; k < n && i + k < s.size(); ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return c;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t maximal = 0;
    const size_t n = sequence_at(bytes, i, maximal);
    if (n > 0) {
      out.append(bytes.data() + i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += maximal;
    }
  }
  return out;
}

std::string normalize(std::string_view s, NormalForm form) {
  bool ascii = true;
  for (char c : s) ascii &= static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(s);
  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormalForm::nfc: options |= UTF8PROC_COMPOSE; break;
    case NormalForm::nfd: options |= UTF8PROC_DECOMPOSE; break;
    case NormalForm::nfkc: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormalForm::nfkd: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* out = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                                          static_cast<utf8proc_ssize_t>(s.size()), &out,
                                          static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(out, &std::free);
  if (n < 0) throw std::bad_alloc();  // the input is valid UTF-8, so only memory can fail
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

}  // namespace st::text
