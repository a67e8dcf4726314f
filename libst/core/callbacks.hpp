// How libst reports while it works, since it never prints: progress and warnings are callbacks
// that a tool connects to its display (bin/common).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace st {

// Where a long operation stands: `done` of `total` steps of kind `what` ("tensors",
// "sequences", ...; total 0 when not known in advance) and `amount` of work so far in
// `amount_unit` ("bytes" or "tokens"), from which a display computes a rate.
struct Progress {
  const char* what = "steps";
  uint64_t done = 0, total = 0;
  uint64_t amount = 0;
  const char* amount_unit = "bytes";
};
// Called as work advances, from one thread at a time.
using ProgressFn = std::function<void(const Progress&)>;

// Called with one line about something the user should know; the operation goes on.
using WarnFn = std::function<void(const std::string& message)>;

}  // namespace st
