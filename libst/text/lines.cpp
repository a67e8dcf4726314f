// Bounded line reading and the ordered parallel map over lines.
#include "libst/text/lines.hpp"

#include <cstring>

#include "libst/core/parallel.hpp"

namespace st::text {

bool LineReader::fill() {
  if (eof_) return false;
  if (pos_ > 0) {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
  in_.read(buf_.data() + end_, std::streamsize(buf_.size() - end_));
  const auto got = size_t(in_.gcount());
  end_ += got;
  if (got == 0) eof_ = true;
  return got > 0;
}

Result<bool> LineReader::next(std::string& line) {
  auto too_long = [&] {
    return make_error(Errc::format, "line " + std::to_string(line_number_ + 1) + ": longer than " +
                                        std::to_string(max_line_ >> 20) + " MiB");
  };
  size_t scanned = 0;  // bytes of the pending line already searched for '\n'
  for (;;) {
    const size_t avail = end_ - pos_;
    const char* start = buf_.data() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(start + scanned, '\n', avail - scanned));
    size_t len = avail;
    if (nl) {
      len = size_t(nl - start);
      pos_ += len + 1;
    } else {
      scanned = avail;
      if (scanned > max_line_) return too_long();
      if (fill()) continue;
      if (in_.bad()) return make_error(Errc::io, "read failed");
      if (avail == 0) return false;
      pos_ += len;  // the last line, without a newline
    }
    if (len > max_line_) return too_long();
    ++line_number_;
    line_start_ = size_t(start - buf_.data());
    if (len > 0 && start[len - 1] == '\r') --len;
    line.assign(start, len);
    return true;
  }
}

Result<bool> LineReader::peek(std::string& line) {
  ST_ASSIGN(bool got, next(line));
  if (got) pos_ = line_start_, --line_number_;
  return got;
}

Status map_lines(LineReader& reader, const std::function<void(LineJob&)>& work,
                 const std::function<Result<bool>(LineJob&)>& sink) {
  // A batch holds enough lines to keep every thread busy and few enough bytes to stay small.
  const size_t batch_lines = size_t(256) * size_t(threads());
  const size_t batch_bytes = size_t(4) << 20;
  std::vector<LineJob> jobs(batch_lines);
  for (;;) {
    size_t n = 0, bytes = 0;
    while (n < batch_lines && bytes < batch_bytes) {
      ST_ASSIGN(bool more, reader.next(jobs[n].line));
      if (!more) break;
      jobs[n].number = reader.line_number();
      bytes += jobs[n].line.size();
      ++n;
    }
    if (n == 0) return {};
    parallel_for(int64_t(n), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        jobs[i].ids.clear();
        jobs[i].out.clear();
        jobs[i].status = {};
        jobs[i].skip = false;
        work(jobs[i]);
      }
    });
    for (size_t i = 0; i < n; ++i) {
      const std::string where = "line " + std::to_string(jobs[i].number) + ": ";
      if (!jobs[i].status) return make_error(jobs[i].status.error().code, where + jobs[i].status.error().message);
      if (jobs[i].skip) continue;
      ST_ASSIGN(bool go_on, sink(jobs[i]));
      if (!go_on) return {};
    }
  }
}

}  // namespace st::text
