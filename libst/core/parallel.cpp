// The thread count, and the loops over one pool of persistent threads (created when first needed,
// rebuilt when the count changes), so a loop costs no thread start-up and threads keep their
// thread-local caches from one loop to the next. The BLAS follows the count.
#include "libst/core/parallel.hpp"

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace st {
namespace {

int g_threads = 0;
// Set on a pool thread and while the caller runs an item: loops started there run inline.
thread_local bool t_serial = false;

struct SerialScope {
  bool saved = t_serial;
  SerialScope() { t_serial = true; }
  ~SerialScope() { t_serial = saved; }
};

// n threads in all, the caller included: items are handed out one at a time from a counter.
class Pool {
 public:
  explicit Pool(int n) {
    for (int i = 1; i < n; ++i) threads_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
  }
  int size() const { return int(threads_.size()) + 1; }

  // Calls fn(i) for every i in [0, count) and returns when all are done.
  void run(int64_t count, const std::function<void(int64_t)>& fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      count_ = count;
      next_ = finished_ = 0;
      ++round_;
    }
    wake_.notify_all();
    take_items();
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return finished_ == count_; });
  }

 private:
  void take_items() {
    std::unique_lock<std::mutex> lock(mu_);
    while (next_ < count_) {
      const int64_t i = next_++;
      lock.unlock();
      (*fn_)(i);
      lock.lock();
      if (++finished_ == count_) done_.notify_all();
    }
  }
  void loop() {
    t_serial = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || round_ != seen; });
        if (stop_) return;
        seen = round_;
      }
      take_items();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t count_ = 0, next_ = 0, finished_ = 0;
  uint64_t round_ = 0;
  bool stop_ = false;
};

std::mutex g_pool_mu;  // one loop at a time on the pool
std::unique_ptr<Pool> g_pool;

// fn(i) for every i in [0, count): on the pool, or inline when nested in a loop, when another
// thread holds the pool, or for a single item. Returns whether it ran on the pool.
bool run_items(int64_t count, const std::function<void(int64_t)>& fn) {
  std::unique_lock<std::mutex> lock(g_pool_mu, std::defer_lock);
  if (count > 1 && !t_serial && threads() > 1 && lock.try_lock()) {
    if (!g_pool || g_pool->size() != threads()) {
      g_pool.reset();
      g_pool = std::make_unique<Pool>(threads());
    }
    g_pool->run(count, [&fn](int64_t i) {
      SerialScope serial;
      fn(i);
    });
    return true;
  }
  for (int64_t i = 0; i < count; ++i) fn(i);
  return false;
}

}  // namespace

void set_threads(int n) {
  g_threads = n > 0 ? n : int(std::max(1u, std::thread::hardware_concurrency()));
  openblas_set_num_threads(g_threads);
}

int threads() {
  if (g_threads == 0) set_threads(0);
  return g_threads;
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk) {
  if (n <= 0) return;
  const int64_t t = t_serial ? 1 : std::min<int64_t>(threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, min_chunk)));
  const int64_t step = (n + t - 1) / t;
  run_items((n + step - 1) / step, [&](int64_t c) { fn(c * step, std::min(n, (c + 1) * step)); });
}

int for_each_item(int64_t n, const std::function<void(int, int64_t)>& fn) {
  const int workers = t_serial ? 1 : int(std::min<int64_t>(threads(), n));
  if (workers <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(0, i);
    return 1;
  }
  openblas_set_num_threads(1);
  const bool pooled = run_items(workers, [&](int64_t w) {
    for (int64_t i = w; i < n; i += workers) fn(int(w), i);
  });
  openblas_set_num_threads(g_threads);
  return pooled ? workers : 1;
}

}  // namespace st
