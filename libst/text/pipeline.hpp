// The stages of a tokenizer.json around its model, as values: normalizers, pre-tokenizers,
// the post-processor and decoders, and the functions that apply them (HF tokenizers' rules).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libst/core/error.hpp"
#include "libst/text/regex.hpp"
#include "libst/text/unicode.hpp"

namespace st::text {

struct Normalizer {
  enum class Kind { form, prepend, replace, strip } kind = Kind::form;
  NormalForm form = NormalForm::nfc;
  std::string content;               // prepend: the prefix; replace: the replacement
  std::shared_ptr<const Regex> pattern;  // replace
  bool left = false, right = false;  // strip
};

// Applies the steps in order (a Sequence is flattened when parsed).
Result<std::string> normalize(const std::vector<Normalizer>& steps, std::string_view s);

enum class SplitBehavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };
enum class PrependScheme { first, never, always };

struct PreTokenizer {
  enum class Kind { split, digits, metaspace, byte_level } kind = Kind::split;
  std::shared_ptr<const Regex> pattern;  // split; byte_level with use_regex (the GPT-2 pattern)
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;
  bool individual_digits = false;        // digits
  std::string replacement;               // metaspace (one character)
  PrependScheme prepend = PrependScheme::always;
  bool split = true;                     // metaspace
  bool add_prefix_space = false;         // byte_level
};

// Pre-tokens as spans of one buffer. at_start marks a span that begins at offset 0 of the
// original text (what Metaspace's prepend_scheme "first" looks at).
struct Span {
  uint32_t begin, end;
  bool at_start;
};
struct Pieces {
  std::string text;
  std::vector<Span> spans;
};

// Runs the steps over in (which they consume). A ByteLevel step only splits: it must be last,
// and the model then reads the pieces as bytes.
Status pre_tokenize(const std::vector<PreTokenizer>& steps, Pieces& in, Pieces& scratch);

struct Decoder {
  enum class Kind { byte_level, metaspace, replace, byte_fallback, fuse, strip } kind = Kind::fuse;
  std::string replacement;               // metaspace
  PrependScheme prepend = PrependScheme::always;
  std::shared_ptr<const Regex> pattern;  // replace
  std::string content;                   // replace: the replacement; strip: the character
  size_t start = 0, stop = 0;            // strip
};

// The decoders' chain over the tokens of some ids, joined (HF's Decoder::decode).
Result<std::string> decode_tokens(const std::vector<Decoder>& steps, std::vector<std::string> tokens);

}  // namespace st::text
