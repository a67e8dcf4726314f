// Fuzz target: st-shard's recipe metadata (libst/shard/recipe.hpp). The first byte picks what the
// rest is: a st.shard.recipe text, a st.shard.source text, or a zstd frame stored as
// st.shard.recipe.zst (its declared size must be capped before anything is allocated).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "libst/core/base64.hpp"
#include "libst/shard/recipe.hpp"

namespace {

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
                         {"st.shard.recipe.zst", st::base64_encode(rest)}};
      if (auto rec = st::read_part_record(md, "f"); rec && *rec) entries((*rec)->recipe);
    }
  }
  return 0;
}
