// Line-oriented input for the tokenizer's tools: a bounded line reader and an ordered parallel
// map over lines (work on many threads, results consumed in input order).
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <string>
#include <vector>

#include "libst/core/error.hpp"

namespace st::text {

// Longest line accepted: longer ones are refused with their line number instead of being read
// into memory whole.
constexpr size_t kMaxLineBytes = size_t(64) << 20;

class LineReader {
 public:
  LineReader(std::istream& in, size_t max_line = kMaxLineBytes) : in_(in), max_line_(max_line) {}
  // The next line without its "\n" or "\r\n"; false at the end of the input. The last line
  // needs no newline.
  Result<bool> next(std::string& line);
  // The next line, left to be read again by next().
  Result<bool> peek(std::string& line);
  int64_t line_number() const { return line_number_; }

 private:
  bool fill();
  std::istream& in_;
  size_t max_line_;
  std::vector<char> buf_ = std::vector<char>(size_t(1) << 20);
  size_t pos_ = 0, end_ = 0, line_start_ = 0;
  bool eof_ = false;
  int64_t line_number_ = 0;
};

// One line's trip through map_lines: work fills ids / out / status, sink reads them.
struct LineJob {
  int64_t number = 0;  // 1-based line number
  std::string line;
  std::vector<int32_t> ids;
  std::string out;
  Status status;
  bool skip = false;  // work found nothing to hand on (a blank JSONL line)
};

// Calls work(job) for every line, batches of lines in parallel (st::threads()), and then
// sink(job) for each in input order (skipped jobs are not handed on); sink returns false to stop
// early. Stops at the first error: a line too long, a work status that failed (reported when
// its turn comes), or an error from sink. Errors carry "line N: " in front.
Status map_lines(LineReader& in, const std::function<void(LineJob&)>& work,
                 const std::function<Result<bool>(LineJob&)>& sink);

}  // namespace st::text
