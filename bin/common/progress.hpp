// The one progress display of the tools: a line on stderr saying what is done of what total,
// the rate, and the time elapsed and left, for libst's progress callbacks (libst/core/callbacks.hpp).
#pragma once

#include <chrono>
#include <string>

#include "libst/core/callbacks.hpp"

namespace st::cli {

// "tensors 12/291  1.25 GB/s  0:03 elapsed, 0:41 left": done/total (done alone when the total
// is not known), the rate of `amount` over `seconds`, and the time left at that pace.
std::string progress_text(const Progress& p, double seconds);

// Shown only when stderr is a terminal and not quiet; redrawn at most five times a second (and
// at the last step); erased by finish() or the destructor. A new `what` starts a new phase: its
// clock restarts.
class ProgressLine {
 public:
  explicit ProgressLine(bool quiet = false);
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(const Progress& p);
  // A callback that updates this line (which must outlive it).
  ProgressFn callback();
  void finish();

 private:
  bool enabled_;
  bool shown_ = false;
  std::string phase_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace st::cli
