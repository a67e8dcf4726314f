// Standard base64 (RFC 4648, padded): how binary frames travel inside safetensors' string metadata.
#pragma once

#include <optional>
#include <string>

namespace st {

std::string base64_encode(const std::string& in);
// nullopt for anything that is not padded standard base64 (bad length, character or padding).
std::optional<std::string> base64_decode(const std::string& in);

}  // namespace st
