// The progress line: its text (rate, elapsed, ETA), its redrawing on a terminal, and its JSON form.
#include "bin/common/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

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

// Seconds left at the pace so far, once a step is done and some remain; negative otherwise.
double seconds_left(const Progress& p, double seconds) {
  if (!p.total || !p.done || p.done >= p.total || seconds <= 0) return -1;
  return seconds * static_cast<double>(p.total - p.done) / static_cast<double>(p.done);
}

bool g_json = false;  // --progress=json

}  // namespace

std::string progress_text(const Progress& p, double seconds) {
  std::string out = std::string(p.what) + " " + std::to_string(p.done);
  if (p.total) out += "/" + std::to_string(p.total);
  if (seconds <= 0) return out;
  if (p.amount) out += "  " + rate_text(static_cast<double>(p.amount), seconds, p.amount_unit);
  out += "  " + clock_text(seconds) + " elapsed";
  const double left = seconds_left(p, seconds);
  if (left >= 0) out += ", " + clock_text(left) + " left";
  return out;
}

std::string progress_json(const Progress& p, double seconds) {
  const double left = seconds_left(p, seconds);
  nlohmann::ordered_json j;
  j["tool"] = tool_name();
  j["what"] = p.what;
  j["done"] = p.done;
  j["total"] = p.total ? nlohmann::ordered_json(p.total) : nlohmann::ordered_json(nullptr);
  j["amount"] = p.amount;
  j["unit"] = p.amount_unit;
  j["elapsed_s"] = std::round(seconds * 1000) / 1000;
  j["rate"] = seconds > 0 ? nlohmann::ordered_json(std::round(static_cast<double>(p.amount) / seconds * 10) / 10)
                          : nlohmann::ordered_json(nullptr);
  j["left_s"] = left >= 0 ? nlohmann::ordered_json(std::round(left * 10) / 10) : nlohmann::ordered_json(nullptr);
  return j.dump();
}

void add_progress_option(CLI::App& app) {
  static std::string mode = "auto";
  app.add_option("--progress", mode,
                 "auto (a progress line with the time left, on a terminal) or json (one JSON object per line\n"
                 "on stderr, for scripts: tool, what, done, total, amount, unit, elapsed_s, rate, left_s)")
      ->check(CLI::IsMember({"auto", "json"}))
      ->each([](const std::string& m) { g_json = m == "json"; });
}

ProgressLine::ProgressLine(bool quiet)
    : enabled_(g_json || (!quiet && isatty(2) != 0)),
      json_(g_json),
      start_(std::chrono::steady_clock::now()),
      last_(start_),
      seen_(start_) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(const Progress& p) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const auto previous = seen_;
  seen_ = now;
  if (phase_ != p.what || p.done == 0) {
    // A phase that says when it starts (done 0) is timed from then; one whose first report is a
    // finished step, from the previous report (or the line's creation).
    phase_ = p.what;
    start_ = p.done == 0 ? now : previous;
    paced_ = false;
  } else if (p.done != p.total && paced_ && now - last_ < std::chrono::milliseconds(200)) {
    return;
  }
  paced_ = paced_ || p.done > 0;  // the first finished step gives the pace: drawn at once
  last_ = now;
  const double secs = std::chrono::duration<double>(now - start_).count();
  if (json_) {
    std::fprintf(stderr, "%s\n", progress_json(p, secs).c_str());
    return;
  }
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
