// The one progress display of the tools: a line on stderr saying what is done of what total,
// the rate, and the time elapsed and left, for libst's progress callbacks (libst/core/callbacks.hpp);
// or, with --progress=json, one JSON object per line on stderr for scripts and wrappers.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>

#include "libst/core/callbacks.hpp"

namespace st::cli {

// "tensors 12/291  1.25 GB/s  0:03 elapsed, 0:41 left": done/total (done alone when the total
// is not known), the rate of `amount` over `seconds`, and the time left at that pace (once a
// step is done).
std::string progress_text(const Progress& p, double seconds);
// {"tool":..., "what":..., "done":..., "total":... (null when not known), "amount":...,
// "unit":..., "elapsed_s":..., "rate":... (amount per second), "left_s":... (null until known)}.
std::string progress_json(const Progress& p, double seconds);

// Adds --progress MODE to a tool that reports progress: "auto" (the default: the line on a
// terminal, unless -q) or "json" (JSON lines on stderr whatever stderr is, even with -q).
void add_progress_option(CLI::App& app);

// Shown only when stderr is a terminal and not quiet (or always with --progress=json); drawn
// when a phase starts, at its first finished step (the time left is then known), at its last,
// and at most five times a second in between; erased by finish() or the destructor. A new
// `what` starts a new phase: its clock restarts.
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
  bool enabled_, json_;
  bool shown_ = false;
  bool paced_ = false;  // this phase has drawn a finished step (its rate and time left)
  std::string phase_;
  std::chrono::steady_clock::time_point start_, last_;  // the phase's start, the last redraw
  std::chrono::steady_clock::time_point seen_;          // the last update, drawn or not
};

}  // namespace st::cli
