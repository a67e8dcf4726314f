// The progress line: its text (rate, elapsed, ETA) and its redrawing on a terminal.
#include "bin/common/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "bin/common/cli.hpp"

namespace st::cli {
namespace {

// 0:07, 12:34, 1:02:03
std::string clock_text(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string rate_text(double amount, double seconds, const char* unit) {
  const double r = amount / seconds;
  char buf[64];
  if (std::strcmp(unit, "bytes") != 0) std::snprintf(buf, sizeof buf, "%.0f %s/s", r, unit);
  else if (r >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB/s", r / 1e9);
  else std::snprintf(buf, sizeof buf, "%.1f MB/s", r / 1e6);
  return buf;
}

}  // namespace

std::string progress_text(const Progress& p, double seconds) {
  std::string out = std::string(p.what) + " " + std::to_string(p.done);
  if (p.total) out += "/" + std::to_string(p.total);
  if (seconds <= 0) return out;
  if (p.amount) out += "  " + rate_text(static_cast<double>(p.amount), seconds, p.amount_unit);
  out += "  " + clock_text(seconds) + " elapsed";
  if (p.total && p.done && p.done < p.total)
    out += ", " + clock_text(seconds * static_cast<double>(p.total - p.done) / static_cast<double>(p.done)) + " left";
  return out;
}

ProgressLine::ProgressLine(bool quiet)
    : enabled_(!quiet && isatty(2) != 0), start_(std::chrono::steady_clock::now()), last_(start_) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(const Progress& p) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (phase_ != p.what) {
    phase_ = p.what;
    start_ = now;
  } else if (p.done != p.total && now - last_ < std::chrono::milliseconds(200)) {
    return;
  }
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r%s: %s\033[K", tool_name().c_str(), progress_text(p, secs).c_str());
  shown_ = true;
}

ProgressFn ProgressLine::callback() {
  return [this](const Progress& p) { update(p); };
}

void ProgressLine::finish() {
  if (shown_) std::fprintf(stderr, "\r\033[K");
  shown_ = false;
}

}  // namespace st::cli
