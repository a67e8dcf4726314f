// Names that come from files are data, not paths: side files carried in __metadata__
// ("st.file.<name>"), tensor -> file entries of a *.safetensors.index.json, the names in .xxh3
// lines, file names in st-shard's st.shard.source. Each must be a plain name inside the
// directory it is joined to, checked here and nowhere else before it is joined or opened.
#pragma once

#include <string>
#include <string_view>

#include "libst/core/error.hpp"

namespace st {

// A plain file name: not empty, not "." or "..", at most 255 bytes, and no '/', NUL or other
// control character. The Errc::format error says which rule `name` breaks, e.g.
// "'../x' is not a plain file name (it holds a '/')"; callers add the file (and key) it came from.
Status check_plain_name(std::string_view name);

// dir + "/" + name after check_plain_name(name).
Result<std::string> join_plain_name(const std::string& dir, std::string_view name);

}  // namespace st
