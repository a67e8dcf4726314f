// Normalizers and pre-tokenizers (HF tokenizers' NormalizedString::split and friends).
#include "libst/text/pipeline.hpp"

#include <algorithm>

namespace st::text {

namespace {

struct Part {
  size_t begin, end;
  bool flag;  // a match (before the behavior fold) or "remove" (after it)
};

// HF's split fold: matches and gaps -> the parts to keep (flag = remove).
void apply_behavior(SplitBehavior behavior, std::vector<Part>& parts) {
  std::vector<Part> out;
  out.reserve(parts.size());
  bool previous = false;
  switch (behavior) {
    case SplitBehavior::removed:
      return;
    case SplitBehavior::isolated:
      for (auto& p : parts) p.flag = false;
      return;
    case SplitBehavior::contiguous:
      for (const auto& p : parts) {
        if (p.flag == previous && !out.empty()) out.back().end = p.end;
        else out.push_back({p.begin, p.end, false});
        previous = p.flag;
      }
      break;
    case SplitBehavior::merged_with_previous:
      for (const auto& p : parts) {
        if (p.flag && !previous && !out.empty()) out.back().end = p.end;
        else out.push_back({p.begin, p.end, false});
        previous = p.flag;
      }
      break;
    case SplitBehavior::merged_with_next:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->flag && !previous && !out.empty()) out.back().begin = it->begin;
        else out.push_back({it->begin, it->end, false});
        previous = it->flag;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  parts.swap(out);
}

// Matches and the gaps between them, covering s.
Status regex_parts(const Regex& re, std::string_view s, bool invert, std::vector<Part>& parts) {
  parts.clear();
  size_t prev = 0;
  ST_CHECK(re.for_each_match(s, [&](size_t b, size_t e) {
    if (prev != b) parts.push_back({prev, b, invert});
    parts.push_back({b, e, !invert});
    prev = e;
  }));
  if (prev != s.size()) parts.push_back({prev, s.size(), invert});
  return {};
}

// Each character for which is_match holds is a match of its own.
template <class Pred>
void char_parts(std::string_view s, Pred is_match, std::vector<Part>& parts) {
  parts.clear();
  size_t last = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t b = i;
    const char32_t c = next_code_point(s, i);
    if (!is_match(c)) continue;
    if (last < b) parts.push_back({last, b, false});
    parts.push_back({b, i, true});
    last = i;
  }
  if (last < s.size()) parts.push_back({last, s.size(), false});
}

void emit(const std::vector<Part>& parts, const Span& span, size_t base, std::vector<Span>& out) {
  for (const auto& p : parts)
    if (!p.flag && p.end > p.begin)
      out.push_back({uint32_t(base + p.begin), uint32_t(base + p.end), span.at_start && p.begin == 0});
}

void replace_all(std::string& s, std::string_view what, std::string_view with) {
  std::string out;
  out.reserve(s.size());
  size_t at = 0;
  for (size_t f; (f = s.find(what, at)) != std::string::npos; at = f + what.size()) out.append(s, at, f - at).append(with);
  out.append(s, at, std::string::npos);
  s.swap(out);
}

Status metaspace(const PreTokenizer& p, Pieces& in, Pieces& out) {
  const std::string_view rep = p.replacement;
  std::vector<Part> parts;
  std::string s;
  for (const Span& span : in.spans) {
    s.assign(in.text, span.begin, span.end - span.begin);
    replace_all(s, " ", rep);
    const bool prepend = p.prepend == PrependScheme::always || (p.prepend == PrependScheme::first && span.at_start);
    if (prepend && s.compare(0, rep.size(), rep) != 0) s.insert(0, rep);
    const size_t base = out.text.size();
    out.text += s;
    if (!p.split) {
      out.spans.push_back({uint32_t(base), uint32_t(base + s.size()), span.at_start});
      continue;
    }
    size_t i0 = 0;
    const char32_t r = next_code_point(rep, i0);
    char_parts(s, [r](char32_t c) { return c == r; }, parts);
    apply_behavior(SplitBehavior::merged_with_next, parts);
    emit(parts, span, base, out.spans);
  }
  return {};
}

Status byte_level(const PreTokenizer& p, Pieces& in, Pieces& out) {
  std::vector<Part> parts;
  for (const Span& span : in.spans) {
    const size_t base = out.text.size();
    if (p.add_prefix_space && in.text[span.begin] != ' ') out.text += ' ';
    out.text.append(in.text, span.begin, span.end - span.begin);
    const std::string_view s(out.text.data() + base, out.text.size() - base);
    if (!p.pattern) {
      out.spans.push_back({uint32_t(base), uint32_t(base + s.size()), span.at_start});
      continue;
    }
    ST_CHECK(regex_parts(*p.pattern, s, false, parts));
    apply_behavior(SplitBehavior::isolated, parts);
    emit(parts, span, base, out.spans);
  }
  return {};
}

Status split(const PreTokenizer& p, Pieces& in, Pieces& out) {
  std::vector<Part> parts;
  out.text.swap(in.text);  // spans only get narrower
  for (const Span& span : in.spans) {
    const std::string_view s(out.text.data() + span.begin, span.end - span.begin);
    if (p.kind == PreTokenizer::Kind::digits)
      char_parts(s, is_numeric, parts);
    else
      ST_CHECK(regex_parts(*p.pattern, s, p.invert, parts));
    apply_behavior(p.kind == PreTokenizer::Kind::digits
                       ? (p.individual_digits ? SplitBehavior::isolated : SplitBehavior::contiguous)
                       : p.behavior,
                   parts);
    emit(parts, span, span.begin, out.spans);
  }
  return {};
}

}  // namespace

Result<std::string> normalize(const std::vector<Normalizer>& steps, std::string_view input) {
  std::string s(input);
  for (const Normalizer& n : steps) {
    switch (n.kind) {
      case Normalizer::Kind::form:
        s = normalize(s, n.form);
        break;
      case Normalizer::Kind::prepend:
        if (!s.empty()) s.insert(0, n.content);
        break;
      case Normalizer::Kind::replace: {
        std::string out;
        size_t prev = 0;
        ST_CHECK(n.pattern->for_each_match(s, [&](size_t b, size_t e) {
          out.append(s, prev, b - prev).append(n.content);
          prev = e;
        }));
        out.append(s, prev, std::string::npos);
        s.swap(out);
        break;
      }
      case Normalizer::Kind::strip: {
        size_t b = 0, e = s.size();
        while (n.left && b < e) {
          size_t k = b;
          if (!is_white_space(next_code_point(s, k))) break;
          b = k;
        }
        while (n.right && e > b) {
          size_t i = e - 1;
          while (i > b && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
          size_t k = i;
          if (!is_white_space(next_code_point(s, k))) break;
          e = i;
        }
        s = s.substr(b, e - b);
        break;
      }
    }
  }
  return s;
}

Status pre_tokenize(const std::vector<PreTokenizer>& steps, Pieces& in, Pieces& scratch) {
  for (const PreTokenizer& p : steps) {
    scratch.text.clear();
    scratch.spans.clear();
    switch (p.kind) {
      case PreTokenizer::Kind::split:
      case PreTokenizer::Kind::digits:
        ST_CHECK(split(p, in, scratch));
        break;
      case PreTokenizer::Kind::metaspace:
        ST_CHECK(metaspace(p, in, scratch));
        break;
      case PreTokenizer::Kind::byte_level:
        ST_CHECK(byte_level(p, in, scratch));
        break;
    }
    std::swap(in, scratch);
  }
  return {};
}

}  // namespace st::text
