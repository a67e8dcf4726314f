// Reading and writing the st.shard.* metadata of part files (see recipe.hpp).
#include "libst/shard/recipe.hpp"

#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "libst/core/base64.hpp"
#include "libst/format/json.hpp"
#include "libst/format/names.hpp"
#include "libst/format/parts.hpp"

namespace st {
namespace {

constexpr const char* kVersionKey = "st.shard.version";
constexpr const char* kTpKey = "st.shard.tp";
constexpr const char* kPackKey = "st.shard.pack";
constexpr const char* kRecipeKey = "st.shard.recipe";
constexpr const char* kSourceKey = "st.shard.source";
constexpr const char* kZstSuffix = ".zst";

// Puts value under key, or under key.zst compressed when it is longer than `limit` bytes.
void put_meta(Metadata& md, const std::string& key, const std::string& value, size_t limit) {
  if (value.size() <= limit) {
    md[key] = value;
    return;
  }
  std::string z(ZSTD_compressBound(value.size()), '\0');
  const size_t n = ZSTD_compress(z.data(), z.size(), value.data(), value.size(), 3);
  if (ZSTD_isError(n)) {
    md[key] = value;
    return;
  }
  z.resize(n);
  md[key + kZstSuffix] = base64_encode(z);
}

// Reads key or key.zst; nullopt when neither is present. The zstd frame's declared size is
// capped (absolute and ratio) before the buffer for it is allocated.
Result<std::optional<std::string>> get_meta(const Metadata& md, const std::string& key, const std::string& file) {
  if (auto it = md.find(key); it != md.end()) return std::optional<std::string>(it->second);
  auto it = md.find(key + kZstSuffix);
  if (it == md.end()) return std::optional<std::string>();
  auto bad = [&](const std::string& why) { return make_error(Errc::format, "bad " + key + kZstSuffix + ": " + why, file); };
  const auto z = base64_decode(it->second);
  if (!z) return bad("not base64");
  const unsigned long long size = ZSTD_getFrameContentSize(z->data(), z->size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) return bad("not a zstd frame of known size");
  if (size > kMaxRecipeBytes || size > kMaxRecipeRatio * z->size())
    return bad("declares " + std::to_string(size) + " bytes from " + std::to_string(z->size()) +
               " compressed (limits: " + std::to_string(kMaxRecipeBytes) + " bytes, ratio " +
               std::to_string(kMaxRecipeRatio) + ")");
  std::string out(size, '\0');
  const size_t n = ZSTD_decompress(out.data(), out.size(), z->data(), z->size());
  if (ZSTD_isError(n) || n != size) return bad("corrupt zstd data");
  return std::optional<std::string>(std::move(out));
}

// Bytes of a shape's elements, or nullopt when the count or the bytes overflow 63 bits.
std::optional<uint64_t> checked_bytes(DType t, const std::vector<int64_t>& shape) {
  uint64_t n = 1, bits = 0;
  for (const int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(dtype_bits(t)), &bits) || bits / 8 > uint64_t(INT64_MAX))
    return std::nullopt;
  return (bits + 7) / 8;
}

// An integer JSON value as int64_t; nullopt for floats, strings or values past INT64_MAX (a cast
// of those would be undefined).
std::optional<int64_t> int64_of(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    return u <= uint64_t(INT64_MAX) ? std::optional<int64_t>(static_cast<int64_t>(u)) : std::nullopt;
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

// One recipe entry, validated.
Result<ShardSource> parse_entry(const nlohmann::json& e, const std::string& file) {
  auto bad = [&](const std::string& why) { return make_error(Errc::format, "bad st.shard.recipe: " + why, file); };
  if (!e.is_array() || (e.size() != 9 && e.size() != 10)) return bad("entry is not a 9- or 10-element array");
  ShardSource s;
  s.name = e[0].get<std::string>();
  auto in_entry = [&](const char* why) { return bad(std::string(why) + " in entry '" + s.name + "'"); };
  const auto file_index = int64_of(e[1]), dim = int64_of(e[5]), chunks = int64_of(e[6]), at = int64_of(e[8]);
  if (!file_index || !dim || !chunks || !at || !e[3].is_array()) return in_entry("a number that is not an integer");
  for (const auto& d : e[3]) {
    const auto v = int64_of(d);
    if (!v) return in_entry("a number that is not an integer");
    s.shape.push_back(*v);
  }
  auto dt = dtype_from_name(e[2].get<std::string>());
  if (!dt) return in_entry("unknown dtype");
  s.dtype = *dt;
  auto kind = split_kind_from_name(e[4].get<std::string>());
  if (!kind) return in_entry("unknown split kind");
  if (*file_index < 0 || *dim < 0 || *dim > 64) return in_entry("file index or split dimension out of range");
  s.file = static_cast<size_t>(*file_index);
  s.rule.kind = *kind;
  s.rule.dim = static_cast<int>(*dim);
  s.rule.chunks = *chunks;
  s.into = e[7].get<std::string>();
  s.at = *at;
  if (!checked_bytes(s.dtype, s.shape)) return in_entry("negative dimension or byte size overflow");
  const bool whole_bytes = dtype_bits(s.dtype) % 8 == 0;
  if (s.rule.kind == SplitKind::split &&
      (s.rule.dim < 0 || static_cast<size_t>(s.rule.dim) >= s.shape.size() || s.rule.chunks < 1 ||
       s.rule.chunks > kMaxParts || (e.size() == 9 && s.shape[s.rule.dim] % s.rule.chunks != 0) || !whole_bytes))
    return in_entry("impossible split");
  if (e.size() == 10) {
    if (s.rule.kind != SplitKind::split || s.rule.dim != 0 || !e[9].is_array() || e[9].empty() || e[9].size() > 16)
      return in_entry("sections on something that is not a dim-0 split");
    int64_t rows = 0;
    for (const auto& sec : e[9]) {
      if (!sec.is_array() || sec.size() != 2) return in_entry("a section that is not [rows, chunks]");
      const auto r = int64_of(sec[0]), c = int64_of(sec[1]);
      if (!r || !c || *r < 0 || *c < 1 || *c > s.rule.chunks || s.rule.chunks % *c != 0 || *r % *c != 0 ||
          *r > s.shape[0] - rows)
        return in_entry("impossible section");
      rows += *r;
      s.rule.sections.push_back(RowSection{*r, *c});
    }
    if (rows != s.shape[0]) return in_entry("sections that do not add up to the rows");
  }
  const int64_t rows = s.shape.empty() ? 0 : piece_shape(s)[0];
  if (s.at < 0 || s.at > INT64_MAX - rows) return in_entry("row offset out of range");
  return s;
}

Result<int> small_int(const Metadata& md, const char* key, int lo, int hi, const std::string& file) {
  const auto it = md.find(key);
  const std::string v = it == md.end() ? std::string() : it->second;
  int n = 0;
  bool ok = !v.empty() && v.size() <= 6 && (v == "0" || v[0] != '0');
  for (const char c : v) ok = ok && c >= '0' && c <= '9' && (n = n * 10 + (c - '0'), true);
  if (!ok || n < lo || n > hi)
    return make_error(Errc::format, std::string(key) + " is '" + v.substr(0, 24) + "', not a number in " +
                                        std::to_string(lo) + ".." + std::to_string(hi), file);
  return n;
}

}  // namespace

std::vector<int64_t> piece_shape(const ShardSource& s) {
  std::vector<int64_t> p = s.shape;
  if (s.rule.kind == SplitKind::split) p[s.rule.dim] = s.rule.dim == 0 ? s.rule.piece_rows(p[0]) : p[s.rule.dim] / s.rule.chunks;
  return p;
}

bool entry_fits(const ShardSource& s, DType dtype, const std::vector<int64_t>& sh) {
  const std::vector<int64_t> ps = piece_shape(s);
  if (dtype != s.dtype || sh.size() != ps.size()) return false;
  if (ps.empty()) return s.at == 0;
  // parse_recipe bounds at <= INT64_MAX - ps[0]: the sum cannot overflow.
  return s.at >= 0 && s.at + ps[0] <= sh[0] && std::equal(ps.begin() + 1, ps.end(), sh.begin() + 1);
}

std::string recipe_json(const std::vector<ShardSource>& sources) {
  nlohmann::json recipe = nlohmann::json::array();
  for (const auto& s : sources) {
    recipe.push_back({s.name, s.file, dtype_name(s.dtype), s.shape, split_kind_name(s.rule.kind), s.rule.dim,
                      s.rule.chunks, s.into, s.at});
    if (!s.rule.sections.empty()) {
      nlohmann::json sections = nlohmann::json::array();
      for (const RowSection& sec : s.rule.sections) sections.push_back({sec.rows, sec.chunks});
      recipe.back().push_back(std::move(sections));
    }
  }
  return recipe.dump();
}

Result<std::vector<ShardSource>> parse_recipe(const std::string& text, const std::string& file) {
  auto bad = [&](const std::string& why) { return make_error(Errc::format, "bad st.shard.recipe: " + why, file); };
  const auto parsed = parse_json(text, JsonRules{"JSON", 4});
  if (!parsed) return bad(parsed.error().message);
  const nlohmann::json& j = *parsed;
  if (!j.is_array()) return bad("not an array");
  std::vector<ShardSource> out;
  try {
    for (const auto& e : j) {
      ST_ASSIGN(ShardSource s, parse_entry(e, file));
      out.push_back(std::move(s));
    }
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  return out;
}

std::string origin_json(const ShardOrigin& o) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  j["layout"] = o.layout;
  j["files"] = nlohmann::ordered_json::array();
  for (const auto& f : o.files) {
    nlohmann::ordered_json md = nlohmann::ordered_json::object();
    for (const auto& [k, v] : f.metadata) md[k] = v;
    j["files"].push_back({{"name", f.name}, {"metadata", md}});
  }
  if (!o.extra.empty()) j["extra"] = o.extra;
  if (o.description) j["description"] = *o.description;
  return j.dump();
}

Result<ShardOrigin> parse_origin(const std::string& text, const std::string& file) {
  auto bad = [&](const std::string& why) { return make_error(Errc::format, "bad st.shard.source: " + why, file); };
  const auto parsed = parse_json(text, JsonRules{"JSON", 4});
  if (!parsed) return bad(parsed.error().message);
  const nlohmann::json& j = *parsed;
  ShardOrigin o;
  try {
    o.layout = j.at("layout").get<std::string>();
    const auto& files = j.at("files");
    if (!files.is_array() || files.empty()) return bad("no files");
    for (const auto& f : files) {
      ShardOrigin::File of{f.at("name").get<std::string>(), {}};
      if (Status ok = check_plain_name(of.name); !ok) return bad("file " + ok.error().message);
      for (const auto& [k, v] : f.at("metadata").items()) of.metadata[k] = v.get<std::string>();
      o.files.push_back(std::move(of));
    }
    if (j.contains("extra"))
      for (const auto& [k, v] : j["extra"].items()) {
        if (Status ok = check_plain_name(k); !ok) return bad("extra file " + ok.error().message);
        o.extra[k] = v.get<std::string>();
      }
    if (j.contains("description")) o.description = j["description"].get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    return bad(e.what());
  }
  return o;
}

Result<std::optional<PartRecord>> read_part_record(const Metadata& md, const std::string& file) {
  const auto version = md.find(kVersionKey);
  if (version == md.end()) return std::optional<PartRecord>();
  if (version->second != "1")
    return make_error(Errc::format, "st.shard.version is '" + version->second.substr(0, 24) + "'; this build reads \"1\"", file);
  PartRecord r;
  ST_ASSIGN(r.tp, small_int(md, kTpKey, 1, kMaxParts, file));
  ST_ASSIGN(r.rank, small_int(md, kShardRankKey, 0, r.tp - 1, file));
  const auto pack = md.find(kPackKey);
  r.pack = pack == md.end() || pack->second != "false";
  ST_ASSIGN(auto recipe, get_meta(md, kRecipeKey, file));
  ST_ASSIGN(auto source, get_meta(md, kSourceKey, file));
  if (!recipe) return make_error(Errc::format, "st.shard.version is set but st.shard.recipe is missing", file);
  r.recipe = std::move(*recipe);
  r.source = source.value_or("");
  return std::optional<PartRecord>(std::move(r));
}

Metadata part_metadata(int tp, bool pack, const std::string& recipe, const std::string& source, size_t compress_above) {
  Metadata md;
  md[kVersionKey] = "1";
  md[kTpKey] = std::to_string(tp);
  md[kPackKey] = pack ? "true" : "false";
  put_meta(md, kRecipeKey, recipe, compress_above);
  put_meta(md, kSourceKey, source, compress_above);
  return md;
}

}  // namespace st
