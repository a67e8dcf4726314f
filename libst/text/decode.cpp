// Decoders: the tokens of some ids back to text (HF tokenizers' decoders, in chain).
#include <array>

#include "libst/text/bpe.hpp"
#include "libst/text/pipeline.hpp"

namespace st::text {

namespace {

// Byte-level character -> byte; -1 for characters outside the alphabet.
const std::array<int, 512>& byte_of_char() {
  static const std::array<int, 512> table = [] {
    std::array<int, 512> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[byte_level_char(static_cast<unsigned char>(b))] = b;
    return t;
  }();
  return table;
}

std::vector<std::string> byte_level(const std::vector<std::string>& tokens) {
  std::string bytes;
  for (const std::string& t : tokens) {
    const size_t mark = bytes.size();
    bool all = true;
    for (size_t i = 0; i < t.size() && all;) {
      const char32_t c = next_code_point(t, i);
      const int b = c < 512 ? byte_of_char()[c] : -1;
      if (b < 0) all = false;
      else bytes += static_cast<char>(b);
    }
    if (!all) bytes.resize(mark), bytes += t;  // a token outside the alphabet stays as it is
  }
  return {utf8_lossy(bytes)};
}

std::vector<std::string> metaspace(const Decoder& d, std::vector<std::string> tokens) {
  size_t i0 = 0;
  const char32_t rep = next_code_point(d.replacement, i0);
  for (size_t n = 0; n < tokens.size(); ++n) {
    std::string out;
    for (size_t i = 0; i < tokens[n].size();) {
      const size_t b = i;
      const char32_t c = next_code_point(tokens[n], i);
      if (c != rep) out.append(tokens[n], b, i - b);
      else if (n != 0 || d.prepend == PrependScheme::never) out += ' ';
    }
    tokens[n].swap(out);
  }
  return tokens;
}

Result<std::vector<std::string>> replace(const Decoder& d, std::vector<std::string> tokens) {
  for (std::string& t : tokens) {
    std::string out;
    size_t prev = 0;
    ST_CHECK(d.pattern->for_each_match(t, [&](size_t b, size_t e) {
      out.append(t, prev, b - prev).append(d.content);
      prev = e;
    }));
    out.append(t, prev, std::string::npos);
    t.swap(out);
  }
  return tokens;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "<0xXX>" tokens in a row become the text of their bytes, or one U+FFFD per byte when those
// bytes are not valid UTF-8.
std::vector<std::string> byte_fallback(const std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string bytes;
  auto flush = [&] {
    if (bytes.empty()) return;
    if (invalid_utf8_at(bytes) == std::string::npos) out.push_back(bytes);
    else
      for (size_t i = 0; i < bytes.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
    bytes.clear();
  };
  for (const std::string& t : tokens) {
    const bool is_byte = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex_digit(t[3]) >= 0 &&
                         hex_digit(t[4]) >= 0;
    if (is_byte) {
      bytes += static_cast<char>(hex_digit(t[3]) * 16 + hex_digit(t[4]));
    } else {
      flush();
      out.push_back(t);
    }
  }
  flush();
  return out;
}

std::vector<std::string> strip(const Decoder& d, std::vector<std::string> tokens) {
  size_t i0 = 0;
  const char32_t content = next_code_point(d.content, i0);
  for (std::string& t : tokens) {
    std::vector<size_t> starts;  // byte offset of each character
    for (size_t i = 0; i < t.size();) starts.push_back(i), next_code_point(t, i);
    auto char_at = [&](size_t k) {
      size_t i = starts[k];
      return next_code_point(t, i);
    };
    const size_t n = starts.size();
    size_t first = 0, last = n;
    for (size_t k = 0; k < d.start && k < n && char_at(k) == content; ++k) first = k + 1;
    for (size_t k = 0; k < d.stop && k < n && char_at(n - k - 1) == content; ++k) last = n - k - 1;
    const size_t b = first < n ? starts[first] : t.size(), e = last < n ? starts[last] : t.size();
    t = e > b ? t.substr(b, e - b) : std::string();
  }
  return tokens;
}

}  // namespace

Result<std::string> decode_tokens(const std::vector<Decoder>& steps, std::vector<std::string> tokens) {
  for (const Decoder& d : steps) {
    switch (d.kind) {
      case Decoder::Kind::byte_level: tokens = byte_level(tokens); break;
      case Decoder::Kind::metaspace: tokens = metaspace(d, std::move(tokens)); break;
      case Decoder::Kind::replace: {
        ST_ASSIGN(tokens, replace(d, std::move(tokens)));
        break;
      }
      case Decoder::Kind::byte_fallback: tokens = byte_fallback(tokens); break;
      case Decoder::Kind::fuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens.assign(1, all);
        break;
      }
      case Decoder::Kind::strip: tokens = strip(d, std::move(tokens)); break;
    }
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace st::text
