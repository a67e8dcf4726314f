// Finding added tokens in text (HF tokenizers' AddedVocabulary::find_matches).
#include "libst/text/added_vocab.hpp"

#include <utf8proc.h>

#include <algorithm>

#include "libst/text/unicode.hpp"

namespace st::text {

namespace {

// Rust regex's \w: alphabetic, marks, decimal digits, connector punctuation, joiners.
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (c == 0x200C || c == 0x200D) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

// Start of the code point that ends at s[end].
size_t previous_char(std::string_view s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  return i;
}

bool ends_with_word(std::string_view s, size_t end) {
  if (end == 0) return false;
  size_t i = previous_char(s, end);
  return is_word_char(next_code_point(s, i));
}

bool starts_with_word(std::string_view s, size_t begin) {
  if (begin >= s.size()) return false;
  return is_word_char(next_code_point(s, begin));
}

// Where the run of white space that ends at s[end] begins.
size_t white_space_run_start(std::string_view s, size_t end) {
  while (end > 0) {
    const size_t i = previous_char(s, end);
    size_t k = i;
    if (!is_white_space(next_code_point(s, k))) break;
    end = i;
  }
  return end;
}

// Where the run of white space that starts at s[begin] ends.
size_t white_space_run_end(std::string_view s, size_t begin) {
  while (begin < s.size()) {
    size_t k = begin;
    if (!is_white_space(next_code_point(s, k))) break;
    begin = k;
  }
  return begin;
}

}  // namespace

void AddedVocab::add(const AddedToken& token, const std::string& pattern) {
  if (pattern.empty()) return;
  Trie& t = sets_[token.normalized];
  int32_t node = 0;
  for (char ch : pattern) {
    const auto c = static_cast<unsigned char>(ch);
    auto& kids = t.nodes[size_t(node)].kids;
    auto it = std::find_if(kids.begin(), kids.end(), [c](const auto& k) { return k.first == c; });
    if (it != kids.end()) {
      node = it->second;
    } else {
      const auto next = int32_t(t.nodes.size());
      kids.emplace_back(c, next);
      t.nodes.emplace_back();
      node = next;
    }
  }
  t.first[static_cast<unsigned char>(pattern[0])] = true;
  t.nodes[size_t(node)].token = int32_t(tokens_.size());
  tokens_.push_back(token);
}

int32_t AddedVocab::longest_at(const Trie& t, std::string_view s, size_t i, size_t& len) const {
  int32_t node = 0, found = -1;
  for (size_t k = i; k < s.size(); ++k) {
    const auto c = static_cast<unsigned char>(s[k]);
    const auto& kids = t.nodes[size_t(node)].kids;
    auto it = std::find_if(kids.begin(), kids.end(), [c](const auto& kid) { return kid.first == c; });
    if (it == kids.end()) break;
    node = it->second;
    if (t.nodes[size_t(node)].token >= 0) found = t.nodes[size_t(node)].token, len = k + 1 - i;
  }
  return found;
}

void AddedVocab::split(std::string_view s, bool normalized_set, std::vector<Segment>& out) const {
  const Trie& t = sets_[normalized_set];
  size_t done = 0;  // end of the last segment emitted
  auto text = [&](size_t b, size_t e) {
    if (b < e) out.push_back({b, e, -1});
  };
  if (t.nodes.size() > 1) {
    for (size_t i = 0; i < s.size();) {
      if (!t.first[static_cast<unsigned char>(s[i])]) {
        ++i;
        continue;
      }
      size_t len = 0;
      const int32_t k = longest_at(t, s, i, len);
      if (k < 0) {
        ++i;
        continue;
      }
      const AddedToken& tok = tokens_[size_t(k)];
      size_t start = i, stop = i + len;
      i = stop;  // the search goes on after the match as found, whatever the flags below do
      if (tok.single_word && (ends_with_word(s, start) || starts_with_word(s, stop))) continue;
      if (tok.lstrip) start = std::max(white_space_run_start(s, start), done);
      if (tok.rstrip) stop = white_space_run_end(s, stop);
      text(done, start);
      out.push_back({start, stop, tok.id});
      done = stop;
    }
  }
  text(done, s.size());
}

}  // namespace st::text
