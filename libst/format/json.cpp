// Bounded JSON parsing (see json.hpp): a linear SAX pass for UTF-8, depth and duplicate keys,
// then nlohmann's DOM parse.
#include "libst/format/json.hpp"

#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace st {
namespace {

using json = nlohmann::json;

// SAX pass: stops at the first duplicate key in an object (when asked) or at nesting deeper than
// the rules allow; syntax errors are left to the DOM parse that follows, which reports them.
// (nlohmann's parser callback rescans the parent object at every object end, quadratic in the
// key count: minutes for a 50k-tensor header; this pass is linear.)
struct Checker : nlohmann::json_sax<json> {
  explicit Checker(const JsonRules& r) : rules(r) {}
  const JsonRules& rules;
  std::vector<std::optional<std::set<std::string>>> open;  // per open container; a key set for objects
  size_t objects = 0;
  std::string stop;
  Fault fault = Fault::none;

  bool deep() {
    if (open.size() > static_cast<size_t>(rules.max_depth)) {
      stop = std::string(rules.what) + " nests deeper than the format allows (" + std::to_string(rules.max_depth) +
             " levels)";
      fault = Fault::too_deep;
      return true;
    }
    return false;
  }
  bool scalar() { return !deep(); }
  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool string(string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }
  bool start_object(std::size_t) override {
    if (deep()) return false;
    open.emplace_back(rules.unique_keys ? std::optional<std::set<std::string>>(std::set<std::string>()) : std::nullopt);
    ++objects;
    return true;
  }
  bool key(string_t& k) override {
    if (deep()) return false;
    if (open.back() && !open.back()->insert(k).second) {
      stop = "duplicate " + std::string(objects == 1 ? rules.top_key : "key") + " '" + k + "' in " + rules.what;
      fault = Fault::duplicate_key;
      return false;
    }
    return true;
  }
  bool end_object() override {
    open.pop_back();
    --objects;
    return true;
  }
  bool start_array(std::size_t) override {
    if (deep()) return false;
    open.emplace_back(std::nullopt);
    return true;
  }
  bool end_array() override {
    open.pop_back();
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
};

// Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points above
// U+10FFFF included), or npos.
size_t invalid_utf8_at(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    unsigned lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c == 0xe0) len = 3, lo = 0xa0;
    else if (c == 0xed) len = 3, hi = 0x9f;
    else if (c >= 0xe1 && c <= 0xef) len = 3;
    else if (c == 0xf0) len = 4, lo = 0x90;
    else if (c == 0xf4) len = 4, hi = 0x8f;
    else if (c >= 0xf1 && c <= 0xf3) len = 4;
    else return i;
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if ((p[i + k] & 0xc0) != 0x80) return i;
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace

Result<json> parse_json(std::string_view text, const JsonRules& rules) {
  const std::string what = rules.what;
  if (const size_t bad = invalid_utf8_at(text); bad != std::string_view::npos) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(text[bad]));
    return make_fault(Fault::invalid_utf8, what + " is not valid UTF-8 (byte " + hex + " at offset " + std::to_string(bad) + ")");
  }
  Checker checker(rules);
  json::sax_parse(text.begin(), text.end(), &checker);
  if (!checker.stop.empty()) return make_fault(checker.fault, checker.stop);
  try {
    return json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    const std::string msg = e.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 5: ..." -> after "] "
    const auto cut = msg.find("] ");
    return make_fault(Fault::invalid_json, what + " is not valid JSON: " + (cut == std::string::npos ? msg : msg.substr(cut + 2)));
  }
}

}  // namespace st
