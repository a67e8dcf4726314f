// Tokenizer: loading tokenizer.json (and tokenizer_config.json) and running encode / decode.
#include "libst/text/tokenizer.hpp"

#include <nlohmann/json.hpp>

#include "libst/core/paths.hpp"
#include "libst/text/parts.hpp"

namespace st::text {

namespace {

// tokenizer_config.json's eos_token: a string, or an AddedToken object with "content".
std::string config_eos(std::string_view config_json) {
  if (config_json.empty()) return {};
  const auto j = nlohmann::json::parse(config_json.begin(), config_json.end(), nullptr, false);
  if (!j.is_object() || !j.contains("eos_token")) return {};
  const auto& e = j["eos_token"];
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object() && e.contains("content") && e["content"].is_string()) return e["content"].get<std::string>();
  return {};
}

// One piece of text that is no added token: pre-tokenized, then each pre-token through the model.
Status tokenize_text(const TokenizerParts& t, std::string_view s, bool at_start, std::vector<int32_t>& ids) {
  if (s.empty()) return {};
  if (t.pre_tokenizers.empty()) {
    t.model->tokenize(s, t.bytes, ids);
    return {};
  }
  thread_local Pieces pieces, scratch;
  pieces.text.assign(s.data(), s.size());
  pieces.spans.assign(1, Span{0, uint32_t(s.size()), at_start});
  ST_CHECK(pre_tokenize(t.pre_tokenizers, pieces, scratch));
  for (const Span& sp : pieces.spans)
    t.model->tokenize(std::string_view(pieces.text.data() + sp.begin, sp.end - sp.begin), t.bytes, ids);
  return {};
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::string tokenizer_json_path(const std::string& path) {
  return is_directory(path) ? path + "/tokenizer.json" : path;
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::load(const std::string& path) {
  const std::string file = tokenizer_json_path(path);
  ST_ASSIGN(std::string json, read_file_text(file));
  std::string config;
  if (auto c = read_file_text(dir_name(file) + "/tokenizer_config.json")) config = std::move(*c);
  return parse(json, config, file);
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::parse(std::string_view json, std::string_view config_json,
                                                          const std::string& path) {
  if (json.size() > 4 && json.compare(0, 4, "\x28\xB5\x2F\xFD") == 0)
    return make_error(Errc::format, "zstd-compressed: decompress it first (zstd -d)", path);
  auto parts = parse_tokenizer_json(json);
  if (!parts) return std::move(parts.error()).in_file(path);
  std::shared_ptr<Tokenizer> t(new Tokenizer());
  t->path_ = path;
  t->parts_ = std::move(*parts);
  const std::string eos = config_eos(config_json);
  if (!eos.empty()) t->eos_id_ = t->parts_->id_of(eos);
  return std::shared_ptr<const Tokenizer>(std::move(t));
}

int32_t Tokenizer::id_end() const { return parts_->id_end; }
size_t Tokenizer::specials_added() const { return parts_->prefix.size() + parts_->suffix.size(); }

Status Tokenizer::encode(std::string_view text, bool add_special, std::vector<int32_t>& ids) const {
  const size_t bad = invalid_utf8_at(text);
  if (bad != std::string_view::npos)
    return make_error(Errc::format, "invalid UTF-8 at byte " + std::to_string(bad));
  const TokenizerParts& t = *parts_;
  if (add_special) ids.insert(ids.end(), t.prefix.begin(), t.prefix.end());
  std::vector<Segment> raw, normal;
  t.added.split(text, false, raw);
  for (const Segment& seg : raw) {
    if (seg.id >= 0) {
      ids.push_back(seg.id);
      continue;
    }
    std::string_view s = text.substr(seg.begin, seg.end - seg.begin);
    std::string normalized;
    if (!t.normalizers.empty()) {
      ST_ASSIGN(normalized, normalize(t.normalizers, s));
      s = normalized;
    }
    const bool at_start = seg.begin == 0;
    if (t.added.empty(true)) {
      ST_CHECK(tokenize_text(t, s, at_start, ids));
      continue;
    }
    normal.clear();
    t.added.split(s, true, normal);
    for (const Segment& sub : normal) {
      if (sub.id >= 0) ids.push_back(sub.id);
      else ST_CHECK(tokenize_text(t, s.substr(sub.begin, sub.end - sub.begin), at_start && sub.begin == 0, ids));
    }
  }
  if (add_special) ids.insert(ids.end(), t.suffix.begin(), t.suffix.end());
  return {};
}

Result<std::string> Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const TokenizerParts& t = *parts_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    auto added = t.added_text.find(id);
    const std::string* token = added != t.added_text.end() ? &added->second : t.model->token_of(id);
    if (!token) return make_error(Errc::format, "token id " + std::to_string(id) + " is not in the vocabulary");
    if (skip_special && t.special.count(*token)) continue;
    tokens.push_back(*token);
  }
  if (!t.has_decoder) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  return decode_tokens(t.decoders, std::move(tokens));
}

}  // namespace st::text
