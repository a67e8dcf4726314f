// A pool of persistent threads for loops whose items differ in cost: items are handed out one at
// a time, and each thread keeps its thread-local state (caches) from one loop to the next.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace st {

class Workers {
 public:
  // n threads in all, the calling thread included (n <= 1: everything runs on the caller).
  explicit Workers(int n);
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  // Calls fn(i) for every i in [0, count) and returns when all are done.
  void run(size_t count, const std::function<void(size_t)>& fn);
  int size() const { return int(threads_.size()) + 1; }

 private:
  void loop();
  void take_items();
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t)>* fn_ = nullptr;
  size_t count_ = 0, next_ = 0, finished_ = 0;
  uint64_t round_ = 0;
  bool stop_ = false;
};

}  // namespace st
