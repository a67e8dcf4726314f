// JSON read from files, bounded: every JSON text libst reads (safetensors headers, config.json,
// descriptions, indexes, shard recipes, checksum maps) is parsed here. Invalid UTF-8 is refused
// by offset (never echoed), nesting deeper than the reader needs is refused before any tree is
// built (nlohmann's copy, comparison and dump recurse: a deeply nested member would overflow the
// stack, or amplify a small file into a huge re-serialised one), and, when asked, duplicate keys.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "libst/core/error.hpp"

namespace st {

struct JsonRules {
  const char* what = "JSON";  // names the text in messages: "header", "config.json", ...
  int max_depth = 64;         // containers nested deeper are refused
  bool unique_keys = false;   // refuse a key repeated in one object
  const char* top_key = "key";  // what a top-level key is called in the duplicate message
};

// config.json: HF configs nest a few levels (text_config > rope_scaling); 32 is far beyond any.
constexpr JsonRules kConfigJsonRules{"config.json", 32};

// Parses text; Errc::format errors (no file) say which rule it breaks:
//   "<what> is not valid UTF-8 (byte 0xff at offset 12)"
//   "<what> nests deeper than the format allows (N levels)"
//   "duplicate <top_key> 'k' in <what>"      (a nested object: "duplicate key 'k' in <what>")
//   "<what> is not valid JSON: <parser's reason>"
Result<nlohmann::json> parse_json(std::string_view text, const JsonRules& rules);

}  // namespace st
