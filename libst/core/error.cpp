// Formatting of error values into the one-line messages the tools print.
#include "libst/core/error.hpp"

namespace st {

std::string Error::str() const {
  std::string out;
  if (!file.empty()) out += "'" + file + "': ";
  if (!tensor.empty()) out += "tensor '" + tensor + "': ";
  out += message;
  return out;
}

const char* fault_name(Fault f) {
  switch (f) {
    case Fault::none: return "none";
    case Fault::too_short: return "too_short";
    case Fault::header_too_large: return "header_too_large";
    case Fault::header_past_end: return "header_past_end";
    case Fault::invalid_utf8: return "invalid_utf8";
    case Fault::invalid_json: return "invalid_json";
    case Fault::too_deep: return "too_deep";
    case Fault::duplicate_key: return "duplicate_key";
    case Fault::invalid_entry: return "invalid_entry";
    case Fault::unknown_dtype: return "unknown_dtype";
    case Fault::size_overflow: return "size_overflow";
    case Fault::length_mismatch: return "length_mismatch";
    case Fault::invalid_offset: return "invalid_offset";
    case Fault::incomplete_buffer: return "incomplete_buffer";
    case Fault::invalid_metadata: return "invalid_metadata";
  }
  return "?";
}

}  // namespace st
