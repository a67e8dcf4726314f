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

}  // namespace st
