// tokenizer.json's normalizer, pre_tokenizer, post_processor and decoder objects -> stage values.
#include "libst/text/stages_json.hpp"

namespace st::text {

using json = nlohmann::json;

Result<std::string> get_string(const json& j, const char* key, const std::string& where, const char* fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback) return std::string(fallback);
    return malformed(where + ": no \"" + key + "\"");
  }
  if (!it->is_string()) return malformed(where + ": \"" + key + "\" is not a string");
  return it->get<std::string>();
}

Result<bool> get_bool(const json& j, const char* key, const std::string& where, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return malformed(where + ": \"" + key + "\" is not true or false");
  return it->get<bool>();
}

Result<std::string> type_of(const json& j, const std::string& where) {
  if (!j.is_object()) return malformed(where + " is not an object");
  return get_string(j, "type", where, nullptr);
}

Result<std::shared_ptr<const Regex>> get_pattern(const json& j, const std::string& where) {
  auto it = j.find("pattern");
  if (it == j.end() || !it->is_object() || it->size() != 1)
    return malformed(where + ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
  const bool literal = it->contains("String");
  const json& p = literal ? (*it)["String"] : it->contains("Regex") ? (*it)["Regex"] : json();
  if (!p.is_string()) return malformed(where + ": \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}");
  auto re = Regex::compile(p.get<std::string>(), literal);
  if (!re) return make_error(re.error().code, where + ": " + re.error().message);
  return re;
}

// One character, as Metaspace's replacement and Strip's content must be.
Result<std::string> get_char(const json& j, const char* key, const std::string& where) {
  ST_ASSIGN(std::string s, get_string(j, key, where, nullptr));
  if (s.empty() || invalid_utf8_at(s) != std::string::npos || utf8_len(static_cast<unsigned char>(s[0])) != s.size())
    return malformed(where + ": \"" + key + "\" must be one character");
  return s;
}

Result<PrependScheme> get_prepend_scheme(const json& j, const std::string& where) {
  ST_ASSIGN(std::string scheme, get_string(j, "prepend_scheme", where, "always"));
  PrependScheme p;
  if (scheme == "always") p = PrependScheme::always;
  else if (scheme == "first") p = PrependScheme::first;
  else if (scheme == "never") p = PrependScheme::never;
  else return malformed(where + ": unknown prepend_scheme '" + scheme + "'");
  ST_ASSIGN(bool prefix, get_bool(j, "add_prefix_space", where, true));  // the older spelling
  if (!prefix) {
    if (p != PrependScheme::never) return malformed(where + ": add_prefix_space does not match prepend_scheme");
    p = PrependScheme::never;
  }
  return p;
}

Status parse_normalizer(const json& j, std::vector<Normalizer>& out) {
  if (j.is_null()) return {};
  const std::string where = "normalizer";
  ST_ASSIGN(std::string type, type_of(j, where));
  Normalizer n;
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) return malformed(where + ": no \"normalizers\" list");
    for (const auto& sub : j["normalizers"]) ST_CHECK(parse_normalizer(sub, out));
    return {};
  } else if (type == "NFC" || type == "NFD" || type == "NFKC" || type == "NFKD") {
    n.kind = Normalizer::Kind::form;
    n.form = type == "NFC" ? NormalForm::nfc : type == "NFD" ? NormalForm::nfd : type == "NFKC" ? NormalForm::nfkc
                                                                                               : NormalForm::nfkd;
  } else if (type == "Prepend") {
    n.kind = Normalizer::Kind::prepend;
    ST_ASSIGN(n.content, get_string(j, "prepend", where + " Prepend", nullptr));
  } else if (type == "Replace") {
    n.kind = Normalizer::Kind::replace;
    ST_ASSIGN(n.pattern, get_pattern(j, where + " Replace"));
    ST_ASSIGN(n.content, get_string(j, "content", where + " Replace", nullptr));
  } else if (type == "Strip") {
    n.kind = Normalizer::Kind::strip;
    ST_ASSIGN(n.left, get_bool(j, "strip_left", where + " Strip", false));
    ST_ASSIGN(n.right, get_bool(j, "strip_right", where + " Strip", false));
  } else {
    return unsupported("normalizer type '" + type + "'");
  }
  out.push_back(std::move(n));
  return {};
}

Result<SplitBehavior> get_behavior(const json& j, const std::string& where) {
  ST_ASSIGN(std::string b, get_string(j, "behavior", where, nullptr));
  if (b == "Removed") return SplitBehavior::removed;
  if (b == "Isolated") return SplitBehavior::isolated;
  if (b == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (b == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (b == "Contiguous") return SplitBehavior::contiguous;
  return malformed(where + ": unknown behavior '" + b + "'");
}

Status parse_pre_tokenizer(const json& j, std::vector<PreTokenizer>& out) {
  if (j.is_null()) return {};
  const std::string where = "pre_tokenizer";
  ST_ASSIGN(std::string type, type_of(j, where));
  PreTokenizer p;
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      return malformed(where + ": no \"pretokenizers\" list");
    for (const auto& sub : j["pretokenizers"]) ST_CHECK(parse_pre_tokenizer(sub, out));
    return {};
  } else if (type == "Split") {
    p.kind = PreTokenizer::Kind::split;
    ST_ASSIGN(p.pattern, get_pattern(j, where + " Split"));
    ST_ASSIGN(p.behavior, get_behavior(j, where + " Split"));
    ST_ASSIGN(p.invert, get_bool(j, "invert", where + " Split", false));
  } else if (type == "Digits") {
    p.kind = PreTokenizer::Kind::digits;
    ST_ASSIGN(p.individual_digits, get_bool(j, "individual_digits", where + " Digits", false));
  } else if (type == "Metaspace") {
    p.kind = PreTokenizer::Kind::metaspace;
    ST_ASSIGN(p.replacement, get_char(j, "replacement", where + " Metaspace"));
    ST_ASSIGN(p.prepend, get_prepend_scheme(j, where + " Metaspace"));
    ST_ASSIGN(p.split, get_bool(j, "split", where + " Metaspace", true));
  } else if (type == "ByteLevel") {
    p.kind = PreTokenizer::Kind::byte_level;
    ST_ASSIGN(p.add_prefix_space, get_bool(j, "add_prefix_space", where + " ByteLevel", true));
    ST_ASSIGN(bool use_regex, get_bool(j, "use_regex", where + " ByteLevel", true));
    if (use_regex) {
      // The GPT-2 pattern HF tokenizers hard-codes for ByteLevel.
      ST_ASSIGN(p.pattern, Regex::compile(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
                                          false));
    }
  } else {
    return unsupported("pre_tokenizer type '" + type + "'");
  }
  out.push_back(std::move(p));
  return {};
}

// The ids of a [token, id] pair (RobertaProcessing and BertProcessing's cls and sep).
Result<int32_t> get_token_pair(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer())
    return malformed(where + ": \"" + key + "\" must be [token, id]");
  return (*it)[1].get<int32_t>();
}

Status parse_template(const json& j, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  const std::string where = "post_processor TemplateProcessing";
  if (!j.contains("single") || !j["single"].is_array()) return malformed(where + ": no \"single\" template");
  const json& specials = j.contains("special_tokens") ? j["special_tokens"] : json::object();
  int sequences = 0;
  for (const auto& piece : j["single"]) {
    if (piece.contains("Sequence")) {
      if (piece["Sequence"].value("id", "") != "A") return malformed(where + ": the single template may only hold sequence A");
      ++sequences;
      continue;
    }
    if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id"))
      return malformed(where + ": a template piece is neither Sequence nor SpecialToken");
    const std::string name = piece["SpecialToken"]["id"].get<std::string>();
    if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
      return malformed(where + ": special token '" + name + "' is not in special_tokens");
    for (const auto& id : specials[name]["ids"]) (sequences ? suffix : prefix).push_back(id.get<int32_t>());
  }
  if (sequences != 1) return malformed(where + ": the single template must hold sequence A once");
  return {};
}

Status parse_post_processor(const json& j, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) {
  if (j.is_null()) return {};
  const std::string where = "post_processor";
  ST_ASSIGN(std::string type, type_of(j, where));
  if (type == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) return malformed(where + ": no \"processors\" list");
    for (const auto& sub : j["processors"]) {
      std::vector<int32_t> p, s;
      ST_CHECK(parse_post_processor(sub, p, s));
      prefix.insert(prefix.begin(), p.begin(), p.end());  // each processor wraps what came before
      suffix.insert(suffix.end(), s.begin(), s.end());
    }
  } else if (type == "TemplateProcessing") {
    ST_CHECK(parse_template(j, prefix, suffix));
  } else if (type == "RobertaProcessing" || type == "BertProcessing") {
    ST_ASSIGN(int32_t cls, get_token_pair(j, "cls", where + " " + type));
    ST_ASSIGN(int32_t sep, get_token_pair(j, "sep", where + " " + type));
    prefix.push_back(cls);
    suffix.push_back(sep);
  } else if (type != "ByteLevel") {
    return unsupported("post_processor type '" + type + "'");
  }
  return {};
}

Status parse_decoder(const json& j, std::vector<Decoder>& out) {
  const std::string where = "decoder";
  ST_ASSIGN(std::string type, type_of(j, where));
  Decoder d;
  if (type == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array()) return malformed(where + ": no \"decoders\" list");
    for (const auto& sub : j["decoders"]) ST_CHECK(parse_decoder(sub, out));
    return {};
  } else if (type == "ByteLevel") {
    d.kind = Decoder::Kind::byte_level;
  } else if (type == "Metaspace") {
    d.kind = Decoder::Kind::metaspace;
    ST_ASSIGN(d.replacement, get_char(j, "replacement", where + " Metaspace"));
    ST_ASSIGN(d.prepend, get_prepend_scheme(j, where + " Metaspace"));
  } else if (type == "Replace") {
    d.kind = Decoder::Kind::replace;
    ST_ASSIGN(d.pattern, get_pattern(j, where + " Replace"));
    ST_ASSIGN(d.content, get_string(j, "content", where + " Replace", nullptr));
  } else if (type == "ByteFallback") {
    d.kind = Decoder::Kind::byte_fallback;
  } else if (type == "Fuse") {
    d.kind = Decoder::Kind::fuse;
  } else if (type == "Strip") {
    d.kind = Decoder::Kind::strip;
    ST_ASSIGN(d.content, get_char(j, "content", where + " Strip"));
    if (!j.value("start", json(0)).is_number_unsigned() || !j.value("stop", json(0)).is_number_unsigned())
      return malformed(where + " Strip: start and stop must be counts");
    d.start = j.value("start", size_t(0));
    d.stop = j.value("stop", size_t(0));
  } else {
    return unsupported("decoder type '" + type + "'");
  }
  out.push_back(std::move(d));
  return {};
}

}  // namespace st::text
