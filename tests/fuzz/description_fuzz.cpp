// Fuzz target: quant_model_description.json text. A description that parses dumps to text that
// parses to the same entries.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "libst/format/description.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto d = st::Description::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!d) return 0;
  const std::string text = d->dump();
  auto again = st::Description::parse(text);
  if (!again || again->dump() != text) std::abort();
  return 0;
}
