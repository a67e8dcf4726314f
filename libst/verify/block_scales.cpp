// st-verify's FP8 check: every block-scaled FP8 weight has its weight_scale_inv of the layout's
// dtype and shape with finite values, and no scale_inv is left without an FP8 weight.
#include <cmath>
#include <cstring>

#include "libst/format/fp8.hpp"
#include "libst/verify/internal.hpp"

namespace st::verify_detail {

void check_block_scales(const Unit& u, Sink& sink) {
  uint64_t pairs = 0;
  for (const auto& name : u.order) {
    const Loc& l = *u.find(name);
    if (is_block_fp8(l.info->dtype)) {
      const Loc* s = u.find(name + std::string(kScaleInvSuffix));
      if (!s) {
        sink.add("structure", u.file_of(name), name,
                 std::string(dtype_name(l.info->dtype)) + " weight has no '" + name + std::string(kScaleInvSuffix) +
                     "' block scales");
        continue;
      }
      if (Status ok = check_block_scale_pair(*l.info, *s->info); !ok) {
        sink.add("structure", u.file_of(s->info->name), s->info->name, ok.error().message);
        continue;
      }
      const ByteView v = u.data(*s);
      for (uint64_t i = 0; i < s->info->numel(); ++i) {
        float f;
        std::memcpy(&f, v.data + 4 * i, 4);
        if (!std::isfinite(f)) {
          sink.add("arithmetic", u.file_of(s->info->name), s->info->name,
                   "block scale " + std::to_string(i) + " is not finite");
          break;
        }
      }
      ++pairs;
    } else if (name.size() > kScaleInvSuffix.size() &&
               name.compare(name.size() - kScaleInvSuffix.size(), kScaleInvSuffix.size(), kScaleInvSuffix) == 0) {
      const std::string weight = name.substr(0, name.size() - kScaleInvSuffix.size());
      const Loc* w = u.find(weight);
      if (!w || !is_block_fp8(w->info->dtype))
        sink.add("structure", u.file_of(name), name,
                 w ? "block scales of '" + weight + "', which is " + dtype_name(w->info->dtype) + ", not FP8"
                   : "block scales of '" + weight + "', which is not in the checkpoint");
    }
  }
  if (pairs) sink.note(std::to_string(pairs) + " FP8 weights: block scales paired, shaped and finite");
}

}  // namespace st::verify_detail
