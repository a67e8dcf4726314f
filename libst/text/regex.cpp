// PCRE2 with JIT behind the tokenizer's Regex: compile checks, per-thread match data.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "libst/text/regex.hpp"

#include <pcre2.h>

#include "libst/text/unicode.hpp"

namespace st::text {

namespace {

// Match data and a JIT stack for the calling thread, shared by every Regex.
struct ThreadMatch {
  pcre2_match_data* data = nullptr;
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  ThreadMatch() {
    data = pcre2_match_data_create(1, nullptr);
    // Deep backtracking (a long run of spaces against \s+(?!\S)) needs more than the default 32 KiB.
    stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatch() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
    pcre2_match_data_free(data);
  }
};

ThreadMatch& thread_match() {
  thread_local ThreadMatch m;
  return m;
}

// Constructs whose meaning differs between Oniguruma and PCRE2.
std::string onig_only_construct(std::string_view p) {
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    if (p[i] == '\\') {
      if (p[i + 1] == 'h' || p[i + 1] == 'H') return std::string("\\") + p[i + 1];
      ++i;
      continue;
    }
    if (p[i] == '(' && p[i + 1] == '?') {
      for (size_t k = i + 2; k < p.size() && p[k] != ':' && p[k] != ')'; ++k)
        if (p[k] == 'm' || p[k] == 's') return std::string(p.substr(i, k - i + 1));
    }
  }
  return {};
}

}  // namespace

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

Result<std::shared_ptr<const Regex>> Regex::compile(std::string_view pattern, bool literal) {
  if (invalid_utf8_at(pattern) != std::string_view::npos)
    return make_error(Errc::format, "pattern is not valid UTF-8");
  if (!literal) {
    const std::string bad = onig_only_construct(pattern);
    if (!bad.empty())
      return make_error(Errc::unsupported, "regex construct '" + bad + "' (Oniguruma semantics) is not supported");
  }
  int err = 0;
  PCRE2_SIZE at = 0;
  const uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err, &at,
                                   nullptr);
  if (!code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return make_error(Errc::format, "regex '" + std::string(pattern) + "' at offset " + std::to_string(at) + ": " +
                                        reinterpret_cast<const char*>(msg));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // without JIT (no support) matching still works
  std::shared_ptr<Regex> re(new Regex());
  re->pattern_ = std::string(pattern);
  re->code_ = code;
  return std::shared_ptr<const Regex>(std::move(re));
}

Result<bool> Regex::find(std::string_view s, size_t from, size_t& begin, size_t& end) const {
  ThreadMatch& m = thread_match();
  const int rc = pcre2_match(static_cast<pcre2_code*>(code_), reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), from,
                             PCRE2_NO_UTF_CHECK, m.data, m.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return make_error(Errc::unsupported, "regex '" + pattern_ + "': " + reinterpret_cast<const char*>(msg));
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(m.data);
  begin = ov[0];
  end = ov[1];
  return true;
}

size_t Regex::utf8_step(std::string_view s, size_t i) { return utf8_len(static_cast<unsigned char>(s[i])); }

}  // namespace st::text
