// Fuzz target: st-shard's recipe metadata (libst/shard/recipe.hpp). The first byte picks what the
// rest is: a st.shard.recipe text, a st.shard.source text, or a zstd frame stored as
// st.shard.recipe.zst (its declared size must be capped before anything is allocated).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "libst/shard/recipe.hpp"

namespace {

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) n |= uint32_t(uint8_t(in[i + 1])) << 8;
    if (i + 2 < in.size()) n |= uint8_t(in[i + 2]);
    out += k[n >> 18 & 63];
    out += k[n >> 12 & 63];
    out += i + 1 < in.size() ? k[n >> 6 & 63] : '=';
    out += i + 2 < in.size() ? k[n & 63] : '=';
  }
  return out;
}

// Every parsed entry can be checked against part shapes without overflow, and re-serialises.
void entries(const std::string& text) {
  auto r = st::parse_recipe(text, "f");
  if (!r) return;
  for (const auto& s : *r) {
    const auto ps = st::piece_shape(s);
    std::vector<int64_t> part = ps;
    if (!part.empty()) part[0] = INT64_MAX;
    (void)st::entry_fits(s, s.dtype, part);
    (void)st::entry_fits(s, s.dtype, ps);
  }
  auto again = st::parse_recipe(st::recipe_json(*r), "f");
  if (!again || again->size() != r->size()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: entries(rest); break;
    case 1: {
      auto o = st::parse_origin(rest, "f");
      if (o && !st::parse_origin(st::origin_json(*o), "f")) std::abort();
      break;
    }
    default: {
      st::Metadata md = {{"st.shard.version", "1"}, {"st.shard.tp", "2"}, {"st.shard.rank", "1"},
                         {"st.shard.recipe.zst", base64(rest)}};
      if (auto rec = st::read_part_record(md, "f"); rec && *rec) entries((*rec)->recipe);
    }
  }
  return 0;
}
