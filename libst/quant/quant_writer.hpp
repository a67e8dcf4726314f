// The writing side of quantize_w8a8: a thread that writes the planned weight files in order
// while the caller computes the next tensors, memory bounded by the bytes in flight; and the
// plan's text files (description, side files, index).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "libst/core/error.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/format/safetensors.hpp"
#include "libst/quant/quant_plan.hpp"

namespace st {

// An uninitialised byte buffer (no zero fill: every byte is written before use).
struct Bytes {
  explicit Bytes(size_t n) : p(new uint8_t[n]), size(n) {}
  std::unique_ptr<uint8_t[]> p;
  size_t size;
  uint8_t* data() { return p.get(); }
};
using Owned = std::shared_ptr<Bytes>;
Owned make_owned(size_t n);
Owned owned_copy(const void* p, size_t n);

// One output tensor's bytes: owned, or a view of mapped input pages.
struct Piece {
  std::string name;
  const void* data = nullptr;
  size_t size = 0;
  Owned owned;
};
Piece piece(std::string name, Owned owned);

// Pieces written together, in order; `after` runs once they are written (releases mapped pages).
struct Job {
  std::vector<Piece> pieces;
  std::function<void()> after;
  uint64_t bytes = 0;
};

// Writes jobs in order on its own thread, opening and finishing the plan's files (in `dir`, or
// stdout for the stream) in turn. push() waits while more than 160 MiB are in flight.
class WeightWriter {
 public:
  WeightWriter(const std::vector<PlannedFile>& files, const std::string& dir);
  ~WeightWriter();
  WeightWriter(const WeightWriter&) = delete;
  WeightWriter& operator=(const WeightWriter&) = delete;

  // Fails with the writer's first error.
  Status push(Job job);
  // Waits for every job; when complete, also finishes files that got no tensor (an empty model).
  Status finish(bool complete);

 private:
  Status open_next();
  Status close_current();
  Status write(const Piece& p);
  void run();

  struct File {
    std::string path;
    const PlannedFile* plan;
  };
  std::vector<File> files_;
  size_t next_file_ = 0, written_ = 0;
  std::unique_ptr<SafetensorsWriter> writer_;
  std::thread thread_;
  std::mutex m_;
  std::condition_variable cv_, space_;
  std::deque<Job> queue_;
  uint64_t in_flight_ = 0;
  bool closing_ = false;
  std::atomic<bool> failed_{false};
  Status error_;
};

// Writes the plan's description, side files (with the input's permission bits) and index into dir.
Status write_plan_texts(const QuantPlan& plan, const Checkpoint& input, const std::string& dir);

}  // namespace st
