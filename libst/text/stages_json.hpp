// Reading the stage objects of tokenizer.json (normalizer, pre_tokenizer, post_processor,
// decoder) and the typed field helpers tokenizer_json.cpp shares.
#pragma once

#include <nlohmann/json.hpp>

#include "libst/text/pipeline.hpp"

namespace st::text {

// Errors of tokenizer.json parsing: a feature not supported, a field malformed.
inline Error unsupported(const std::string& what) { return make_error(Errc::unsupported, what + " is not supported"); }
inline Error malformed(const std::string& what) { return make_error(Errc::format, what); }

// A string field; a missing or null one is `fallback`, or an error when fallback is nullptr.
Result<std::string> get_string(const nlohmann::json& j, const char* key, const std::string& where,
                               const char* fallback);
Result<bool> get_bool(const nlohmann::json& j, const char* key, const std::string& where, bool fallback);

// Each appends its steps (a Sequence flattened) and refuses unknown types by name.
Status parse_normalizer(const nlohmann::json& j, std::vector<Normalizer>& out);
Status parse_pre_tokenizer(const nlohmann::json& j, std::vector<PreTokenizer>& out);
Status parse_decoder(const nlohmann::json& j, std::vector<Decoder>& out);
// The ids the post-processor puts before and after one sequence when adding special tokens.
Status parse_post_processor(const nlohmann::json& j, std::vector<int32_t>& prefix, std::vector<int32_t>& suffix);

}  // namespace st::text
