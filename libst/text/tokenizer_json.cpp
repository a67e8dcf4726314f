// tokenizer.json -> TokenizerParts: the top level, the BPE model and the added tokens.
#include <map>

#include "libst/text/parts.hpp"
#include "libst/text/stages_json.hpp"

namespace st::text {

namespace {

using json = nlohmann::json;


Result<std::vector<std::pair<std::string, std::string>>> parse_merges(const json& merges) {
  if (!merges.is_array()) return malformed("model: \"merges\" is not a list");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {  // the older "a b" form
      const std::string& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        return malformed("model: merge " + std::to_string(i) + " '" + s + "' is not two tokens");
      out.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return malformed("model: merge " + std::to_string(i) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  return out;
}

Status refuse_option(const json& model, const char* key, bool empty_string_ok) {
  auto it = model.find(key);
  if (it == model.end() || it->is_null()) return {};
  if (empty_string_ok && it->is_string() && it->get_ref<const std::string&>().empty()) return {};
  if (!empty_string_ok && it->is_number() && it->get<double>() == 0.0) return {};
  return unsupported(std::string("model option \"") + key + "\" = " + it->dump());
}

Result<std::unique_ptr<Bpe>> parse_model(const json& model) {
  if (!model.is_object()) return malformed("no \"model\" object");
  ST_ASSIGN(std::string type, get_string(model, "type", "model", "BPE"));
  if (type != "BPE") return unsupported("model type '" + type + "'");
  ST_CHECK(refuse_option(model, "dropout", false));
  ST_CHECK(refuse_option(model, "continuing_subword_prefix", true));
  ST_CHECK(refuse_option(model, "end_of_word_suffix", true));
  BpeOptions o;
  ST_ASSIGN(o.unk_token, get_string(model, "unk_token", "model", ""));
  ST_ASSIGN(o.fuse_unk, get_bool(model, "fuse_unk", "model", false));
  ST_ASSIGN(o.byte_fallback, get_bool(model, "byte_fallback", "model", false));
  ST_ASSIGN(o.ignore_merges, get_bool(model, "ignore_merges", "model", false));
  if (!model.contains("vocab") || !model["vocab"].is_object()) return malformed("model: no \"vocab\" object");
  std::vector<std::pair<std::string, int32_t>> vocab;
  vocab.reserve(model["vocab"].size());
  for (const auto& [tok, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= INT32_MAX)
      return malformed("model: vocab entry '" + tok + "' has no valid id");
    vocab.emplace_back(tok, id.get<int32_t>());
  }
  ST_ASSIGN(auto merges, parse_merges(model.contains("merges") ? model["merges"] : json::array()));
  return Bpe::build(std::move(vocab), merges, o);
}

// HF's AddedVocabulary::add_tokens: a token already in the model keeps the model's id, a new
// one takes the next free id after the model's; a content seen twice keeps its last flags.
Status parse_added_tokens(const json& list, TokenizerParts& t) {
  if (list.is_null()) return {};
  if (!list.is_array()) return malformed("\"added_tokens\" is not a list");
  std::map<int32_t, AddedToken> by_id;
  int32_t next_id = int32_t(t.model->size());
  for (const auto& j : list) {
    if (!j.is_object()) return malformed("added_tokens: an entry is not an object");
    AddedToken a;
    ST_ASSIGN(a.content, get_string(j, "content", "added_tokens", nullptr));
    const std::string where = "added token '" + a.content + "'";
    ST_ASSIGN(a.single_word, get_bool(j, "single_word", where, false));
    ST_ASSIGN(a.lstrip, get_bool(j, "lstrip", where, false));
    ST_ASSIGN(a.rstrip, get_bool(j, "rstrip", where, false));
    ST_ASSIGN(a.normalized, get_bool(j, "normalized", where, true));
    ST_ASSIGN(a.special, get_bool(j, "special", where, false));
    if (a.content.empty()) continue;
    if (invalid_utf8_at(a.content) != std::string::npos) return malformed(where + " is not valid UTF-8");
    auto known = t.added_ids.find(a.content);
    if (known != t.added_ids.end()) {
      a.id = known->second;
    } else {
      a.id = t.model->id_of(a.content);
      if (a.id < 0) a.id = next_id++;
    }
    t.added_ids[a.content] = a.id;
    if (a.special) t.special.insert(a.content);
    by_id[a.id] = a;
  }
  for (const auto& [id, a] : by_id) {
    std::string pattern = a.content;
    if (a.normalized && !t.normalizers.empty()) {
      ST_ASSIGN(pattern, normalize(t.normalizers, a.content));
    }
    t.added.add(a, pattern);
    t.added_text[id] = pattern;
    t.id_end = std::max(t.id_end, id + 1);
  }
  return {};
}

Status check_top_level(const json& j) {
  if (!j.is_object()) return malformed("not a JSON object");
  if (j.contains("version") && j["version"] != "1.0") return unsupported("tokenizer.json version " + j["version"].dump());
  if (j.contains("truncation") && !j["truncation"].is_null()) return unsupported("\"truncation\"");
  if (j.contains("padding") && !j["padding"].is_null()) {
    const json& p = j["padding"];
    if (!p.is_object() || p.value("strategy", json()) != "BatchLongest")
      return unsupported("\"padding\" other than BatchLongest");
  }
  return {};
}

Status check_byte_level_last(const std::vector<PreTokenizer>& steps) {
  for (size_t i = 0; i + 1 < steps.size(); ++i)
    if (steps[i].kind == PreTokenizer::Kind::byte_level)
      return unsupported("a ByteLevel pre-tokenizer followed by another pre-tokenizer");
  return {};
}

}  // namespace

int32_t TokenizerParts::id_of(std::string_view token) const {
  auto it = added_ids.find(std::string(token));
  return it != added_ids.end() ? it->second : model->id_of(token);
}

Result<std::unique_ptr<TokenizerParts>> parse_tokenizer_json(std::string_view text) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) return malformed("not valid JSON");
  auto t = std::make_unique<TokenizerParts>();
  try {
    ST_CHECK(check_top_level(j));
    ST_CHECK(parse_normalizer(j.value("normalizer", json()), t->normalizers));
    ST_CHECK(parse_pre_tokenizer(j.value("pre_tokenizer", json()), t->pre_tokenizers));
    ST_CHECK(check_byte_level_last(t->pre_tokenizers));
    t->bytes = !t->pre_tokenizers.empty() && t->pre_tokenizers.back().kind == PreTokenizer::Kind::byte_level;
    ST_ASSIGN(t->model, parse_model(j.value("model", json())));
    t->id_end = t->model->id_end();
    ST_CHECK(parse_added_tokens(j.value("added_tokens", json()), *t));
    ST_CHECK(parse_post_processor(j.value("post_processor", json()), t->prefix, t->suffix));
    const json decoder = j.value("decoder", json());
    t->has_decoder = !decoder.is_null();
    if (t->has_decoder) ST_CHECK(parse_decoder(decoder, t->decoders));
  } catch (const json::exception& e) {
    return malformed(std::string("unexpected value: ") + e.what());
  }
  return t;
}

}  // namespace st::text
