// Other model formats, recognised by their first bytes, so that a tool handed one says what it
// is ("a GGUF file") instead of failing on a safetensors header length: GGUF, PyTorch (torch.save
// zip and legacy pickle), ONNX, NumPy .npy and HDF5. Only consulted once a file has failed as
// safetensors: each of these magics, read as a safetensors header length, is far over the limit.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "libst/core/error.hpp"

namespace st {

// What the first bytes of a file (as many as are at hand; 128 is plenty) are when they are
// another model format, e.g. "a GGUF file (llama.cpp, version 3)"; nullopt otherwise.
std::optional<std::string> foreign_format(std::string_view head);

// The same for the file at `path` (its first 128 bytes); nullopt when unreadable or not foreign.
std::optional<std::string> foreign_format_of_file(const std::string& path);

// The one-line error for a file that is another format: "this is WHAT, not safetensors: ..."
// with the way on (Errc::unsupported).
Error foreign_format_error(const std::string& what, const std::string& path);

}  // namespace st
