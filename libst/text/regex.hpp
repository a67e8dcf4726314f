// The split and replace patterns of tokenizer.json, run with PCRE2 (JIT-compiled).
//
// HF tokenizers compiles these patterns with Oniguruma. The constructs they use (\p{L}, \p{N},
// \p{P}, \p{S}, \p{M}, \s, classes, (?i:...), lookahead, counted repeats) mean the same in PCRE2
// with UTF and UCP on; the few that do not (\h and \H are hex digits in Oniguruma, (?m) is dotall
// there) are refused. Known difference: PCRE2's \s also matches U+180E MONGOLIAN VOWEL SEPARATOR,
// which Oniguruma's White_Space-based \s does not.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "libst/core/error.hpp"

namespace st::text {

class Regex {
 public:
  // A regular expression, or with literal = true the exact string.
  static Result<std::shared_ptr<const Regex>> compile(std::string_view pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The leftmost match starting at or after `from`: 1 with [begin, end) set, 0 when none.
  Result<bool> find(std::string_view s, size_t from, size_t& begin, size_t& end) const;

  // Calls fn(begin, end) for each match left to right the way Oniguruma's find_iter does: after
  // an empty match the search moves on one character.
  template <class Fn>
  Status for_each_match(std::string_view s, Fn&& fn) const {
    size_t from = 0, b = 0, e = 0;
    while (from <= s.size()) {
      ST_ASSIGN(bool found, find(s, from, b, e));
      if (!found) break;
      fn(b, e);
      if (e > b) {
        from = e;
      } else {
        if (e >= s.size()) break;
        from = e + utf8_step(s, e);
      }
    }
    return {};
  }

  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  static size_t utf8_step(std::string_view s, size_t i);
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8
};

}  // namespace st::text
